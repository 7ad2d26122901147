"""Executor fixtures: a real executor pool (bubblewrap when installed) and host-harm checks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from codequant.limits import Limits
from codequant_executor.pool import ExecutorPool
from codequant_executor.sandbox import UID_BASE

FAST = Limits(timeout_s=3.0, memory_mb=512, max_output_bytes=64_000)


@pytest.fixture(scope="session")
def pool() -> Iterator[ExecutorPool]:
    pool = ExecutorPool(workers=2)
    yield pool
    pool.close()


def sandbox_processes() -> list[int]:
    """PIDs of processes running under any sandbox slot uid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                uid = next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if UID_BASE <= uid < UID_BASE + 1000:
            found.append(int(entry))
    return found
