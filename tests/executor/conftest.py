"""Executor fixtures: a real executor pool (bubblewrap when installed) and host-harm checks."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from codequant.limits import Limits
from codequant_executor.pool import ExecutorPool
from codequant_executor.sandbox import UID_BASE

FAST = Limits(timeout_s=3.0, memory_mb=512, max_output_bytes=64_000)
#: When the executor's tests began, in clock ticks since boot (as /proc/PID/stat's start time). The host-harm checks
#: count sandboxed processes started since then: these tests' own. Once, in CI, two sandboxed processes started
#: during the orchestrator's fault tests (executor workers killed mid-study) were still there and failed every
#: executor test after them, whatever those did; that leak is theirs to find, not these tests'.
SESSION_START = int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


@pytest.fixture(scope="session")
def pool() -> Iterator[ExecutorPool]:
    pool = ExecutorPool(workers=2)
    yield pool
    pool.close()


def sandbox_processes(pool: ExecutorPool | None = None) -> list[int]:
    """PIDs of processes running under any sandbox slot uid, started since these tests began (but the compile servers
    of ``pool``, which live on)."""
    servers = {UID_BASE + slot for slot in pool.compile_slots} if pool is not None else set()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                uid = next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
            with open(f"/proc/{entry}/stat") as handle:
                started = int(handle.read().rsplit(")", 1)[1].split()[19])  # field 22, after the command's name
        except (OSError, StopIteration, IndexError, ValueError):
            continue
        if UID_BASE <= uid < UID_BASE + 1000 and uid not in servers and started >= SESSION_START:
            found.append(int(entry))
    return found
