"""Calibration hidden states between blocks: [N, L, H] kept on the compute device, in host memory, or in a file.

The reference implementation's ``--offload_activations`` keeps them in host memory; a file (memory-mapped)
goes further, for models whose activations exceed host memory (34B: 69 GB per buffer in bfloat16 at the
paper's 1024 x 4096 tokens). Blocks read them in batches, moved to the compute device in float32.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch

#: Where activations live: on the device that computes (``device``), host memory (``cpu``), or a file (``disk``).
PLACES = ("device", "cpu", "disk")
#: Rows read at a time when a whole buffer is streamed (one row is seqlen x hidden values).
CHUNK_ROWS = 8


class Activations:
    """One buffer of ``rows`` sequences of ``[seqlen, hidden]`` hidden states in ``dtype``."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        dtype: torch.dtype,
        *,
        place: str,
        device: torch.device,
        file: Path | None = None,
    ) -> None:
        if place not in PLACES:
            raise ValueError(f"activations place must be one of {PLACES}, got {place!r}")
        self.shape, self.dtype, self.place, self.device = shape, dtype, place, torch.device(device)
        self.file = file
        if place == "disk":
            if file is None:
                raise ValueError("disk activations need a file")
            file.parent.mkdir(parents=True, exist_ok=True)
            numel = math.prod(shape)
            # shared=True maps the file itself: writes land in it, and the OS pages rows in and out.
            self.data = torch.from_file(str(file), shared=True, size=numel, dtype=dtype).view(shape)
        else:
            home = self.device if place == "device" else torch.device("cpu")
            self.data = torch.empty(shape, dtype=dtype, device=home)

    @property
    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()

    def read(self, rows: slice | torch.Tensor) -> torch.Tensor:
        """Rows (a slice, or an index tensor on the CPU) on the compute device in float32 (a view when nothing
        needs converting)."""
        index = rows if isinstance(rows, slice) or self.data.device == rows.device else rows.to(self.data.device)
        return self.data[index].to(self.device, non_blocking=True).float()

    def write(self, start: int, values: torch.Tensor) -> None:
        self.data[start : start + values.shape[0]].copy_(values.detach())

    def batches(self, batch: int) -> Iterator[tuple[int, torch.Tensor]]:
        """(start row, rows on the compute device in float32) in order."""
        for start in range(0, self.shape[0], batch):
            yield start, self.read(slice(start, start + batch))

    def mean_square(self) -> torch.Tensor:
        """Mean of the squared values (float32 on the compute device): one reduction when the buffer already is a
        float32 tensor where the computation runs, else accumulated in float64 over chunks of rows."""
        if self.data.dtype == torch.float32 and self.data.device == self.device:
            return self.data.square().mean()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for _, rows in self.batches(CHUNK_ROWS):
            total += rows.double().square().sum()
        return (total / self.data.numel()).float()

    def save(self, path: Path) -> None:
        """Write the raw values to ``path`` (atomically; ``load`` reads them back)."""
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            for start in range(0, self.shape[0], CHUNK_ROWS):
                chunk = self.data[start : start + CHUNK_ROWS].cpu()
                handle.write(_raw(chunk).numpy().tobytes())
        tmp.replace(path)

    def load(self, path: Path) -> None:
        """Fill the buffer from a file written by ``save``."""
        row_bytes = math.prod(self.shape[1:]) * self.data.element_size()
        with path.open("rb") as handle:
            for start in range(0, self.shape[0], CHUNK_ROWS):
                count = min(CHUNK_ROWS, self.shape[0] - start)
                raw = bytearray(handle.read(row_bytes * count))
                if len(raw) != row_bytes * count:
                    raise ValueError(f"{path}: truncated activations file")
                chunk = torch.frombuffer(raw, dtype=self.dtype).view(count, *self.shape[1:])
                self.data[start : start + count].copy_(chunk)

    def rename(self, path: Path) -> None:
        """Move a disk buffer's file (its mapping stays valid)."""
        if self.file is None:
            raise ValueError("only disk activations have a file")
        self.file.replace(path)
        self.file = path

    def release(self) -> None:
        """Drop the values (and a disk buffer's file)."""
        self.data = torch.empty(0)
        if self.file is not None:
            self.file.unlink(missing_ok=True)


def _raw(tensor: torch.Tensor) -> torch.Tensor:
    """The same bytes as an integer tensor numpy can hold (numpy has no bfloat16)."""
    return tensor.contiguous().view(torch.int16) if tensor.element_size() == 2 else tensor.contiguous()
