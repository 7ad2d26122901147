"""Layered sandbox for untrusted programs.

No maintained library isolates short-lived untrusted programs with these layers, so they are
composed here from system tools, outermost first:

1. bubblewrap (when installed and working): new PID, network, IPC and UTS namespaces; a read-only view
   of /usr and of the few other folders the runtime needs; a private size-limited /tmp as the only
   writable place; the program folder read-only; a new session; dies with its parent; every capability
   dropped from the bounding set; a seccomp filter (``syscall_filter.py``) that denies new namespaces and
   memory rlimits do not count.
2. memory: a cgroup v2 child per run with ``memory.max`` where the controller is delegated
   (``cgroups.py``), and always rlimits: the address space and data segment for Python, the data segment
   for the JVM (its heap reservation breaks under RLIMIT_AS; -Xmx and -XX:MaxDirectMemorySize cap it too).
3. rlimits via ``prlimit``: CPU seconds, file size, open files, processes, core dumps.
4. its own unprivileged uid via ``setpriv`` when we run as root (each concurrent slot gets its own
   uid, so RLIMIT_NPROC bounds one run only and a sweep by uid finds every leftover process).
5. a wall-clock timeout that kills the whole tree, capped stdout/stderr, a scrubbed environment
   and a fresh working folder removed afterwards.

``prlimit`` and ``setpriv`` (util-linux) are used instead of ``preexec_fn``, which is unsafe in the
threaded executor. ``command`` builds the command line, ``limits`` sets the resource limits, ``process`` runs one
command and collects what it wrote; ``Sandbox`` composes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from codequant.limits import Limits
from codequant.text import decode_output
from codequant_executor.cgroups import SHIM, RunCgroup
from codequant_executor.harness.tree import remove_tree
from codequant_executor.sandbox.command import CommandBuilder, Mount
from codequant_executor.sandbox.limits import helper_rlimits, memory_cgroups, run_rlimits
from codequant_executor.sandbox.process import (
    PROOF_CAP,
    Outcome,
    SandboxFailure,
    close_all,
    collect_output,
    in_lasting_thread,
    kill_group,
    start_process,
    sweep_uid,
)
from codequant_executor.syscall_filter import build_filter

#: What other modules use of the sandbox (the layers live in ``command``, ``limits`` and ``process``).
__all__ = [
    "CLEANUP_S",
    "PROOF_CAP",
    "PROOF_FD",
    "UID_BASE",
    "Mount",
    "Outcome",
    "Sandbox",
    "SandboxFailure",
    "in_lasting_thread",
    "kill_group",
    "sweep_uid",
]

log = logging.getLogger(__name__)

#: Slot uids start here. (Executors before the private slot folder claimed 61000 + slot through another
#: folder; a distinct range keeps the two from sharing, and sweeping, one uid on the same host.)
UID_BASE = 62000
#: Replaced in a command line by the number of the descriptor the harness writes its proof to.
PROOF_FD = "{proof_fd}"
#: How long removing one run's folder may take.
CLEANUP_S = 30.0
_warned: set[str] = set()
_warn_lock = threading.Lock()
_probe_cache: dict[str, str] = {}


def _warn_once(key: str, message: str) -> None:
    with _warn_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message)
    print(message, file=sys.stderr, flush=True)


def _probe_bwrap(bwrap: str) -> str:
    """Why bubblewrap cannot isolate a process here ("" when it can); Docker's default seccomp profile, for
    one, forbids the namespaces it needs, and Docker's masked /proc paths forbid the fresh /proc that runs mount
    (without it Python would still run, but no Java compile server would start). Probed once per binary."""
    if bwrap not in _probe_cache:
        command = [bwrap, "--ro-bind", "/usr", "/usr", "--unshare-net", "--unshare-pid", "--dev", "/dev"]
        command += ["--proc", "/proc"]
        command += ["--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--", "/usr/bin/true"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
            problem = "" if result.returncode == 0 else (result.stderr.strip() or f"exit code {result.returncode}")
        except (OSError, subprocess.SubprocessError) as exc:
            problem = str(exc)
        _probe_cache[bwrap] = problem
    return _probe_cache[bwrap]


def _world_readable(path: Path) -> bool:
    """Every folder from / down to ``path`` lets other users in (x), and ``path`` itself is readable."""
    try:
        for folder in [*reversed(path.parents), path]:
            if not folder.stat().st_mode & 0o001:
                return False
        return bool(path.stat().st_mode & 0o004)
    except OSError:
        return False


class Sandbox:
    """Runs commands under the layers above; ``run`` is thread-safe given distinct ``slot`` numbers."""

    def __init__(self, *, use_bwrap: bool | None = None, uid_base: int = UID_BASE, cgroups: bool = True) -> None:
        found = shutil.which("bwrap") if use_bwrap is not False else None
        if use_bwrap and not found:
            raise RuntimeError("bubblewrap requested but bwrap is not installed")
        self.bwrap_problem = "" if found else "bwrap is not installed (Debian package bubblewrap)"
        if found:
            self.bwrap_problem = _probe_bwrap(found)
        self.bwrap = found if found and not self.bwrap_problem else None
        if use_bwrap is False:
            self.bwrap_problem = "bubblewrap was turned off"
        self.root = os.geteuid() == 0
        self.uid_base = uid_base
        self.prlimit = shutil.which("prlimit")
        self.setpriv = shutil.which("setpriv")
        self.seccomp, self.seccomp_problem = build_filter() if self.bwrap else (None, "needs bubblewrap")
        self.cgroups, self.cgroup_problem = memory_cgroups() if cgroups else (None, "turned off")
        if self.bwrap is None:
            _warn_once(
                "bwrap",
                "WARNING: bubblewrap cannot isolate programs here "
                f"({self.bwrap_problem}): untrusted programs run WITHOUT network, PID and filesystem isolation "
                "(rlimits, uid, timeout and output caps still apply)",
            )
        elif self.seccomp is None:
            _warn_once("seccomp", f"WARNING: no seccomp filter in the sandbox: {self.seccomp_problem}")
        mount = shutil.which("mount") if self.bwrap and self.root and self.setpriv else None
        self.commands = CommandBuilder(self.bwrap, self.prlimit, self.setpriv, self.seccomp, self.root, mount)

    @property
    def isolated(self) -> bool:
        """Whether programs run without network access (bubblewrap's namespaces)."""
        return self.bwrap is not None

    @property
    def layers(self) -> list[str]:
        """The isolation layers in effect, for the report and for tests."""
        layers = ["bubblewrap"] if self.bwrap else []
        if self.seccomp:
            layers.append("seccomp")
        layers.append("cgroup-memory" if self.cgroups else "rlimit-memory")
        if self.prlimit:
            layers.append("rlimits")
        if self.root and self.setpriv:
            layers.append("own-uid")
        return [*layers, "timeout", "output-cap", "clean-env", "fresh-workdir"]

    def drops_uid(self, mounts: Sequence[Mount]) -> bool:
        """Whether programs run under a slot's own uid: as root, and (without bubblewrap, which re-mounts what
        the program needs) only if every folder it needs is readable by other users."""
        if not (self.root and self.setpriv):
            return False
        if self.bwrap or all(_world_readable(m.host) for m in mounts):
            return True
        _warn_once(
            "uid",
            "WARNING: without bubblewrap, programs cannot run under their own uid because a folder they need "
            f"is not readable by other users ({', '.join(str(m.host) for m in mounts)})",
        )
        return False

    def mounts(self, folders: Sequence[Path], *, same_path: bool = False) -> list[Mount]:
        """How the program sees each host folder: /usr (or any folder, with ``same_path``) stays where it is,
        anything else moves under /opt/cq."""
        out: list[Mount] = []
        for index, folder in enumerate(folders):
            folder = folder.resolve()
            keep = not self.bwrap or same_path or folder.is_relative_to("/usr")
            out.append(Mount(folder, str(folder) if keep else f"/opt/cq/{index}"))
        return out

    def workdir(self, parent: Path | None = None) -> Path:
        """A fresh folder for one program's files (the caller removes it with ``cleanup``)."""
        path = Path(tempfile.mkdtemp(prefix="cq-run-", dir=parent))
        path.chmod(0o755)
        return path

    @staticmethod
    def cleanup(path: Path) -> None:
        """Remove a folder a run used, whatever a program left in it (any depth: ``harness/tree.py``), within
        ``CLEANUP_S``; what cannot be removed is logged, never raised."""
        if not remove_tree(path, time.monotonic() + CLEANUP_S):
            log.warning("could not remove %s within %s s", path, CLEANUP_S)

    @contextlib.contextmanager
    def scratch(self, parent: Path | None = None) -> Iterator[Path]:
        """A fresh ``workdir`` for one program, removed when the block ends."""
        path = self.workdir(parent)
        try:
            yield path
        finally:
            self.cleanup(path)

    def inside_workdir(self, workdir: Path) -> str:
        return "/work" if self.bwrap else str(workdir)

    def uid(self, slot: int) -> int:
        return self.uid_base + slot

    def run(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        mounts: Sequence[Mount],
        limits: Limits,
        slot: int,
        nproc: int,
        memory: str,
        stdin: bytes = b"",
        proof: bool = False,
        proc: bool = True,
        timeout_s: float | None = None,
        writable: Sequence[Path] = (),
    ) -> Outcome:
        """Run ``argv`` (paths as the program sees them) and collect its capped output.

        ``memory`` is "address-space" (RLIMIT_AS and RLIMIT_DATA) or "data" (RLIMIT_DATA only: the JVM).
        ``stdin`` is written to the program's standard input, which is then closed. With ``proof``, a pipe is
        passed to the program and the ``PROOF_FD`` argument replaced by its number; what arrives on it is
        ``Outcome.proof``. ``proc`` mounts /proc (Python runs without it: nothing there for it to read).
        ``writable`` folders are shown read-write at their own path (for the executor's own tools, never for
        untrusted programs).
        """
        timeout = limits.timeout_s if timeout_s is None else timeout_s
        rlimits = run_rlimits(limits, memory, timeout)
        keep_fds: list[int] = []
        proof_read = None
        group: RunCgroup | None = None
        try:
            if proof:
                proof_read, proof_write = os.pipe()
                keep_fds.append(proof_write)
                if self.drops_uid(mounts):  # so that the JVM can reopen it as /proc/self/fd/N
                    os.fchown(proof_write, self.uid(slot), self.uid(slot))
                argv = [str(proof_write) if a == PROOF_FD else a for a in argv]
            if self.cgroups is not None:
                group = self.cgroups.create(slot, limits.memory_mb, nproc)
            command, popen_env, cwd = self.commands.wrap(
                argv,
                workdir=workdir,
                mounts=mounts,
                uid=self.uid(slot) if self.drops_uid(mounts) else None,
                nproc=nproc,
                rlimits=rlimits,
                proc=proc,
                keep_fds=keep_fds,
                writable=writable,
            )
            if group is not None:
                command = ["/bin/sh", "-c", SHIM, "cq-cgroup", group.procs, *command]
            began = time.monotonic()
            process = start_process(command, popen_env, cwd, keep_fds, stderr=subprocess.PIPE)
            try:
                assert process.stdin is not None
                with contextlib.suppress(BrokenPipeError):
                    process.stdin.write(stdin)  # far below a pipe's capacity: never blocks
                process.stdin.close()
                stdout, stderr, proof_data, timed_out, exceeded = collect_output(
                    process, timeout, limits.max_output_bytes, proof_read
                )
            finally:
                kill_group(process)
                if self.drops_uid(mounts):
                    sweep_uid(self.uid(slot), thorough=self.bwrap is None)
            memory_exceeded = group is not None and group.oom_killed()
        finally:
            close_all(keep_fds)
            if proof_read is not None:
                os.close(proof_read)
            if group is not None:
                group.remove()
        code = process.returncode
        if self.bwrap and code is not None and code > 128 and not timed_out and not exceeded:
            code = -(code - 128)  # bwrap reports a child killed by signal N as 128 + N
        return Outcome(
            exit_code=code,
            stdout=decode_output(stdout),
            stderr=decode_output(stderr),
            timed_out=timed_out,
            output_exceeded=exceeded,
            duration_s=time.monotonic() - began,
            memory_exceeded=memory_exceeded,
            proof=proof_data,
        )

    def spawn(
        self,
        argv: Sequence[str],
        *,
        mounts: Sequence[Mount],
        slot: int,
        nproc: int,
        data_mb: int,
        writable: Sequence[Path] = (),
    ) -> subprocess.Popen[bytes]:
        """Start a long-lived helper (the compile server) under the same layers, without a timeout: stdin and
        stdout are pipes, stderr is discarded; ``writable`` folders are shown read-write at their own path. It
        dies with the executor (``process.in_lasting_thread``)."""
        rlimits = helper_rlimits(data_mb)
        keep_fds: list[int] = []
        try:
            command, popen_env, cwd = self.commands.wrap(
                argv,
                workdir=None,
                mounts=mounts,
                uid=self.uid(slot) if self.drops_uid(mounts) else None,
                nproc=nproc,
                rlimits=rlimits,
                proc=True,
                keep_fds=keep_fds,
                writable=writable,
            )
        except BaseException:
            close_all(keep_fds)
            raise
        return start_process(command, popen_env, cwd, keep_fds, stderr=subprocess.DEVNULL, lasting=True)

    def zygote_command(
        self, argv: Sequence[str], *, workdir: Path, mounts: Sequence[Mount], keep_fds: list[int], proc: str
    ) -> list[str]:
        """The command of a slot's Python fork server (``CommandBuilder.zygote``)."""
        return self.commands.zygote(argv, workdir=workdir, mounts=mounts, keep_fds=keep_fds, proc=proc)
