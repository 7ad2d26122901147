"""Layered sandbox for untrusted programs.

No maintained library isolates short-lived untrusted programs with these layers, so they are
composed here from system tools, outermost first:

1. bubblewrap (when installed): new PID, network, IPC and UTS namespaces; a read-only view of /usr
   and of the few other folders the runtime needs; a private size-limited /tmp as the only writable
   place; the program folder read-only; a new session; dies with its parent.
2. rlimits via ``prlimit``: CPU seconds, file size, open files, processes, core dumps, and address
   space where the runtime tolerates it (not the JVM: its memory is capped with -Xmx).
3. its own unprivileged uid via ``setpriv`` when we run as root (each concurrent slot gets its own
   uid, so RLIMIT_NPROC bounds one run only and a sweep by uid finds every leftover process).
4. a wall-clock timeout that kills the whole tree, capped stdout/stderr, a scrubbed environment
   and a fresh working folder removed afterwards.

``prlimit`` and ``setpriv`` (util-linux) are used instead of ``preexec_fn``, which is unsafe in the
threaded executor.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codequant.limits import Limits

log = logging.getLogger(__name__)

UID_BASE = 61000
SCRATCH_MB = 64
_warned = threading.Event()
_warned_uid = threading.Event()


@dataclass
class Outcome:
    """What happened to one sandboxed process."""

    exit_code: int | None  # negative: killed by that signal
    stdout: str
    stderr: str
    timed_out: bool
    output_exceeded: bool
    duration_s: float


@dataclass(frozen=True)
class Mount:
    """A host folder shown read-only to the program, at ``inside``."""

    host: Path
    inside: str


class Sandbox:
    """Runs commands under the layers above; ``run`` is thread-safe given distinct ``slot`` numbers."""

    def __init__(self, *, use_bwrap: bool | None = None, uid_base: int = UID_BASE) -> None:
        found = shutil.which("bwrap")
        self.bwrap = found if (use_bwrap is None or use_bwrap) else None
        if use_bwrap and not found:
            raise RuntimeError("bubblewrap requested but bwrap is not installed")
        self.root = os.geteuid() == 0
        self.uid_base = uid_base
        self.prlimit = shutil.which("prlimit")
        self.setpriv = shutil.which("setpriv")
        if self.bwrap is None and not _warned.is_set():
            _warned.set()
            message = (
                "WARNING: bubblewrap (bwrap) is not installed: untrusted programs run WITHOUT network, PID "
                "and filesystem isolation (rlimits, uid, timeout and output caps still apply). "
                "Install the Debian package bubblewrap."
            )
            log.warning(message)
            print(message, file=sys.stderr, flush=True)

    @property
    def layers(self) -> list[str]:
        """The isolation layers in effect, for the report and for tests."""
        layers = ["bubblewrap"] if self.bwrap else []
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
        if not _warned_uid.is_set():
            _warned_uid.set()
            message = (
                "WARNING: without bubblewrap, programs cannot run under their own uid because a folder they need "
                f"is not readable by other users ({', '.join(str(m.host) for m in mounts)})"
            )
            log.warning(message)
            print(message, file=sys.stderr, flush=True)
        return False

    def mounts(self, folders: Sequence[Path]) -> list[Mount]:
        """How the program sees each host folder: /usr stays where it is, anything else moves under /opt/cq."""
        out: list[Mount] = []
        for index, folder in enumerate(folders):
            folder = folder.resolve()
            inside = str(folder) if (not self.bwrap or folder.is_relative_to("/usr")) else f"/opt/cq/{index}"
            out.append(Mount(folder, inside))
        return out

    def workdir(self) -> Path:
        """A fresh folder for one program's files (the caller removes it with ``cleanup``)."""
        path = Path(tempfile.mkdtemp(prefix="cq-run-"))
        path.chmod(0o755)
        return path

    @staticmethod
    def cleanup(path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def inside_workdir(self, workdir: Path) -> str:
        return "/work" if self.bwrap else str(workdir)

    def run(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        mounts: Sequence[Mount],
        limits: Limits,
        slot: int,
        nproc: int,
        address_space: bool,
        env: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Outcome:
        """Run ``argv`` (paths as the program sees them) and collect its capped output."""
        uid = self.uid_base + slot
        timeout = limits.timeout_s if timeout_s is None else timeout_s
        scratch = "/tmp" if self.bwrap else str(workdir)
        environment = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": scratch,
            "TMPDIR": scratch,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            **(env or {}),
        }
        command = list(argv)
        if self.drops_uid(mounts):
            command = [
                self.setpriv,
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
                *command,
            ]
            if not self.bwrap:
                os.chown(workdir, uid, uid)
        if self.prlimit:
            cpu = math.ceil(timeout) + 1
            rlimits = [
                f"--cpu={cpu}",
                f"--fsize={SCRATCH_MB * 1024 * 1024}",
                "--nofile=512",
                f"--nproc={nproc}",
                "--core=0",
            ]
            if address_space:
                rlimits.append(f"--as={limits.memory_mb * 1024 * 1024}")
            command = [self.prlimit, *rlimits, "--", *command]
        if self.bwrap:
            command = [*self._bwrap_prefix(workdir, mounts, environment), "--", *command]
            popen_env: dict[str, str] = {}
            cwd = None
        else:
            popen_env, cwd = environment, str(workdir)
        start = time.monotonic()
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=popen_env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxFailure(f"cannot start {command[0]}: {exc}") from exc
        try:
            stdout, stderr, timed_out, exceeded = _collect(process, timeout, limits.max_output_bytes)
        finally:
            _kill(process)
            if self.drops_uid(mounts):
                _sweep_uid(uid, thorough=self.bwrap is None)
        code = process.returncode
        if self.bwrap and code is not None and code > 128 and not timed_out and not exceeded:
            code = -(code - 128)  # bwrap reports a child killed by signal N as 128 + N
        return Outcome(
            exit_code=code,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
            timed_out=timed_out,
            output_exceeded=exceeded,
            duration_s=time.monotonic() - start,
        )

    def _bwrap_prefix(self, workdir: Path, mounts: Sequence[Mount], env: dict[str, str]) -> list[str]:
        assert self.bwrap
        prefix = [
            self.bwrap,
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--symlink",
            "usr/bin",
            "/bin",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(SCRATCH_MB * 1024 * 1024),
            "--tmpfs",
            "/tmp",
            "--ro-bind",
            str(workdir),
            "/work",
            "--perms",
            "0755",
            "--dir",
            "/opt/cq",
        ]
        for mount in mounts:
            if mount.inside != str(mount.host) or not mount.host.is_relative_to("/usr"):
                prefix += ["--ro-bind", str(mount.host), mount.inside]
        if self.root:
            # setpriv needs these two to switch to the slot's uid; it then drops every capability.
            prefix += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        prefix += ["--chdir", "/tmp", "--clearenv"]
        for key, value in env.items():
            prefix += ["--setenv", key, value]
        return prefix


class SandboxFailure(RuntimeError):
    """The sandbox itself could not run the program (reported as SandboxError)."""


def _collect(process: subprocess.Popen, timeout: float, cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Read both pipes until EOF, the deadline, or more than ``cap`` bytes on one stream."""
    assert process.stdout is not None and process.stderr is not None
    buffers = {process.stdout: bytearray(), process.stderr: bytearray()}
    selector = selectors.DefaultSelector()
    for stream in buffers:
        os.set_blocking(stream.fileno(), False)
        selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    timed_out = exceeded = False
    while selector.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        for key, _ in selector.select(min(remaining, 0.5)):
            chunk = key.fileobj.read(65536)  # type: ignore[union-attr]
            if not chunk:
                selector.unregister(key.fileobj)
                continue
            buffer = buffers[key.fileobj]  # type: ignore[index]
            buffer.extend(chunk)
            if len(buffer) > cap:
                exceeded = True
        if exceeded:
            break
    selector.close()
    if not timed_out and not exceeded:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    out, err = (bytes(buffers[s][:cap]) for s in (process.stdout, process.stderr))
    return out, err, timed_out, exceeded


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL the process group (with bubblewrap this ends the whole PID namespace)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _world_readable(path: Path) -> bool:
    """Every folder from / down to ``path`` lets other users in (x), and ``path`` itself is readable."""
    try:
        for folder in [*reversed(path.parents), path]:
            if not folder.stat().st_mode & 0o001:
                return False
        return bool(path.stat().st_mode & 0o004)
    except OSError:
        return False


def _sweep_uid(uid: int, *, thorough: bool) -> None:
    """Kill every process still running as a slot's uid (daemons that left the process group).

    /proc/<pid> belongs to the process's effective uid, so one stat per process finds them, unless a
    process made itself non-dumpable (then its /proc entry belongs to root): ``thorough`` also reads the
    real uid of those. Under bubblewrap the PID namespace already ends them all, so the quick pass suffices.
    """
    for _ in range(3):
        found = False
        with os.scandir("/proc") as entries:
            for entry in entries:
                if not entry.name.isdigit():
                    continue
                try:
                    owner = entry.stat(follow_symlinks=False).st_uid
                    if owner != uid and not (thorough and owner == 0 and _real_uid(entry.name) == uid):
                        continue
                except OSError:
                    continue
                found = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)
        if not found:
            return
        time.sleep(0.01)


def _real_uid(pid: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
