"""The resource limits of a sandboxed process: rlimits (as ``prlimit`` options and as the fork server reads them)
and the per-run memory cgroup, detected once per process."""

from __future__ import annotations

import math
import os
import threading

from codequant.limits import Limits
from codequant_executor.cgroups import MemoryCgroups

#: The size of a program's private /tmp and its largest file.
SCRATCH_MB = 64
#: Files and folders in a program's private /tmp, at most: a tmpfs bounds bytes, not inodes, and each empty
#: file costs the host ~1 kB of kernel memory and its removal time (emptying 10 000 takes ~0.1 s).
SCRATCH_INODES = 10_000
#: The size of a program's private /dev/shm (POSIX semaphores and shared memory: multiprocessing's locks).
SHM_MB = 16
#: Open files of one process, at most.
NOFILE = 512
_cgroups: tuple[MemoryCgroups | None, str] | None = None
_cgroups_lock = threading.Lock()


def cpu_seconds(timeout_s: float) -> tuple[int, int]:
    """RLIMIT_CPU of a run, (soft, hard). The soft limit is one second beyond the wall-clock timeout: a program
    past it gets SIGXCPU (reported as Timeout). Threads burning CPU in parallel get there before the wall clock;
    the hard limit (SIGKILL, which would read like a crash) is beyond what every core of this machine can burn
    before the wall clock ends the run, so a program that ignores SIGXCPU still ends as a Timeout."""
    soft = math.ceil(timeout_s) + 1
    return soft, soft * (os.cpu_count() or 1) + 2


def run_rlimits(limits: Limits, memory: str, timeout_s: float) -> list[str]:
    """CPU and memory of one run: ``memory`` "address-space" (RLIMIT_AS and RLIMIT_DATA) or "data" (RLIMIT_DATA
    only: the JVM's heap reservation breaks under RLIMIT_AS)."""
    size = limits.memory_mb * 1024 * 1024
    memory_limits = [f"--data={size}"] + ([f"--as={size}"] if memory == "address-space" else [])
    soft, hard = cpu_seconds(timeout_s)
    return [f"--cpu={soft}:{hard}", *memory_limits]


def helper_rlimits(data_mb: int) -> list[str]:
    """A long-lived helper's (the compile server's) memory: its data segment; it has no CPU limit."""
    return [f"--data={data_mb * 1024 * 1024}"]


def common_rlimits(nproc: int) -> list[str]:
    """What every sandboxed process gets: file size, open files, processes, no core dumps."""
    return [f"--fsize={SCRATCH_MB * 1024 * 1024}", f"--nofile={NOFILE}", f"--nproc={nproc}", "--core=0"]


def memory_cgroups() -> tuple[MemoryCgroups | None, str]:
    """The process-wide per-run cgroup factory, detected once (detection may move this process)."""
    global _cgroups
    with _cgroups_lock:
        if _cgroups is None:
            _cgroups = MemoryCgroups.detect()
        return _cgroups
