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


def sandbox_processes(pool: ExecutorPool | None = None) -> list[int]:
    """PIDs of processes running under any sandbox slot uid (but the compile servers of ``pool``, which live on)."""
    servers = {UID_BASE + slot for slot in pool.compile_slots} if pool is not None else set()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                uid = next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if UID_BASE <= uid < UID_BASE + 1000 and uid not in servers:
            found.append(int(entry))
    return found
