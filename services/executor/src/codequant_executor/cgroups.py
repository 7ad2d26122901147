"""A cgroup v2 child per run, so that every byte a run holds counts against its memory limit.

rlimits bound one process's address space or data segment; a cgroup's ``memory.max`` bounds everything the
run's processes hold together: heap and native memory of every process, anonymous files (memfd), tmpfs
pages, pipe buffers and kernel memory. When the memory controller can be delegated to the executor, each run
gets ``<base>/run-<pid>-<slot>-<n>`` with ``memory.max`` = the limit, ``memory.swap.max`` = 0,
``memory.oom.group`` = 1 and ``pids.max``; the run's first process moves itself in before it executes
anything (a one-line shell shim, since ``subprocess`` cannot start a child inside a cgroup), an OOM kill is
read back from ``memory.events``, and ``cgroup.kill`` ends whatever is left.

The base is ``$CODEQUANT_CGROUP`` (a delegated cgroup v2 folder) or the executor's own cgroup when it may
write there; in its own cgroup the executor first moves itself to a ``supervisor`` leaf (cgroup v2 allows
controllers only below cgroups without processes). Hosts with cgroup v1 memory accounting, read-only
cgroup mounts (Docker's default) or no delegation use the rlimit fallback (docs/executor.md). Written by hand:
no maintained Python library manages per-process cgroup v2 leaves.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ENV = "CODEQUANT_CGROUP"
#: Moves the shell into the cgroup, then becomes the command: ``sh -c SHIM cq-cgroup PROCS_FILE argv...``.
SHIM = 'echo 0 > "$1" && shift && exec "$@"'


def _cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` or the hybrid ``unified`` folder)."""
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return Path(left.split()[4])
    return None


def _own_cgroup() -> str | None:
    with contextlib.suppress(OSError), open("/proc/self/cgroup", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


@dataclass
class RunCgroup:
    """One run's cgroup: where its first process moves itself, and what happened to it."""

    path: Path

    @property
    def procs(self) -> str:
        return str(self.path / "cgroup.procs")

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run for exceeding ``memory.max``."""
        with contextlib.suppress(OSError):
            for line in (self.path / "memory.events").read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill" and int(value) > 0:
                    return True
        return False

    def remove(self) -> None:
        """Kill whatever still runs in the cgroup and remove it."""
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)


class MemoryCgroups:
    """Creates per-run cgroups under a base with the memory (and pids) controller enabled for children."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._pids = "pids" in (base / "cgroup.subtree_control").read_text().split()
        self._names = itertools.count()

    @classmethod
    def detect(cls) -> tuple[MemoryCgroups | None, str]:
        """A usable instance, or None and the reason the rlimit fallback applies."""
        mount = _cgroup2_mount()
        if mount is None:
            return None, "no cgroup v2 hierarchy is mounted"
        configured = os.environ.get(CGROUP_ENV)
        own = _own_cgroup()
        if configured:
            base = Path(configured)
        elif own is not None:
            base = mount / own.lstrip("/")
        else:
            return None, "this process is in no cgroup v2 group"
        try:
            controllers = (base / "cgroup.controllers").read_text().split()
        except OSError as exc:
            return None, f"cannot read {base}/cgroup.controllers ({exc.strerror})"
        if "memory" not in controllers:
            return None, f"the memory controller is not available in {base} (cgroup v1 memory, or not delegated)"
        if not os.access(base, os.W_OK) or not os.access(base / "cgroup.subtree_control", os.W_OK):
            return None, f"{base} is not writable (read-only cgroup mount or no delegation)"
        try:
            enabled = (base / "cgroup.subtree_control").read_text().split()
            if "memory" not in enabled:
                if not configured and own is not None:
                    supervisor = base / "supervisor"
                    supervisor.mkdir(exist_ok=True)
                    (supervisor / "cgroup.procs").write_text(str(os.getpid()))
                wanted = " ".join(f"+{c}" for c in ("memory", "pids") if c in controllers)
                (base / "cgroup.subtree_control").write_text(wanted)
        except OSError as exc:
            return None, f"cannot enable the memory controller below {base} ({exc.strerror})"
        return cls(base), ""

    def create(self, slot: int, memory_mb: int, pids: int) -> RunCgroup:
        """A fresh cgroup for one run: memory.max = ``memory_mb``, no swap, OOM kills the whole run."""
        path = self.base / f"run-{os.getpid()}-{slot}-{next(self._names)}"
        path.mkdir()
        group = RunCgroup(path)
        try:
            (path / "memory.max").write_text(str(memory_mb * 1024 * 1024))
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                if (path / name).exists():
                    (path / name).write_text(value)
            if self._pids:
                (path / "pids.max").write_text(str(pids))
        except OSError:
            group.remove()
            raise
        return group
