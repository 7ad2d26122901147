"""Time and peak memory of a stretch of work (a block, the end-to-end fine-tuning), for progress and records."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class Meter:
    """On CUDA: the peak of memory allocated by PyTorch on the device (``torch.cuda.max_memory_allocated``, reset
    at start). On the CPU: the process's peak resident memory (VmHWM, reset at start through
    ``/proc/self/clear_refs``; None where Linux does not allow it)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.measure = "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process peak RSS (VmHWM)"
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            with contextlib.suppress(OSError):  # not Linux, or /proc read-only: the peak is then the process's
                _CLEAR_REFS.write_text("5")

    def read(self) -> dict[str, Any]:
        """Seconds since ``start`` and the peak in bytes."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak: int | None = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = peak_rss()
        return {
            "seconds": round(time.monotonic() - self._started, 3),
            "peak_memory_bytes": peak,
            "memory_measure": self.measure,
        }


def peak_rss() -> int | None:
    """This process's peak resident set size in bytes (Linux VmHWM)."""
    try:
        match = re.search(r"^VmHWM:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None
