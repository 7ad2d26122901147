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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from codequant.limits import Limits
from codequant_executor.cgroups import SHIM, MemoryCgroups, RunCgroup
from codequant_executor.syscall_filter import build_filter

log = logging.getLogger(__name__)

#: Slot uids start here. (Executors before the private slot folder claimed 61000 + slot through another
#: folder; a distinct range keeps the two from sharing, and sweeping, one uid on the same host.)
UID_BASE = 62000
SCRATCH_MB = 64
#: Replaced in a command line by the number of the descriptor the harness writes its proof to.
PROOF_FD = "{proof_fd}"
PROOF_CAP = 4096
#: What setpriv needs to switch to the slot's uid and empty the bounding set (it then drops them all).
SETPRIV_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
#: What a Python fork server keeps: switching its children to the slot's uid, emptying /tmp after each.
ZYGOTE_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL")
ZYGOTE_BWRAP_CAPS = (*ZYGOTE_CAPS, "CAP_SETPCAP")  # setpriv needs CAP_SETPCAP to empty the bounding set
#: setpriv before the fork server: it keeps ZYGOTE_CAPS (inheritable, hence permitted after executing as root),
#: nothing ambient, and an empty bounding set that its children inherit.
ZYGOTE_SETPRIV = (
    "--inh-caps=-all," + ",".join("+" + cap.removeprefix("CAP_").lower() for cap in ZYGOTE_CAPS),
    "--ambient-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
)
_warned: set[str] = set()
_warn_lock = threading.Lock()
_probe_cache: dict[str, str] = {}
_cgroups: tuple[MemoryCgroups | None, str] | None = None


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


def memory_cgroups() -> tuple[MemoryCgroups | None, str]:
    """The process-wide per-run cgroup factory, detected once (detection may move this process)."""
    global _cgroups
    with _warn_lock:
        if _cgroups is None:
            _cgroups = MemoryCgroups.detect()
        return _cgroups


@dataclass
class Outcome:
    """What happened to one sandboxed process."""

    exit_code: int | None  # negative: killed by that signal
    stdout: str
    stderr: str
    timed_out: bool
    output_exceeded: bool
    duration_s: float
    memory_exceeded: bool = False  # the run's cgroup hit memory.max
    proof: bytes = b""  # what the harness wrote to its proof descriptor


@dataclass(frozen=True)
class Mount:
    """A host folder shown read-only to the program, at ``inside``."""

    host: Path
    inside: str


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
        shutil.rmtree(path, ignore_errors=True)

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
        rlimits = [f"--cpu={math.ceil(timeout) + 1}"]
        size = limits.memory_mb * 1024 * 1024
        rlimits += [f"--data={size}"] + ([f"--as={size}"] if memory == "address-space" else [])
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
            command, popen_env, cwd = self._command(
                argv,
                workdir=workdir,
                mounts=mounts,
                slot=slot,
                nproc=nproc,
                rlimits=rlimits,
                proc=proc,
                keep_fds=keep_fds,
                writable=writable,
            )
            if group is not None:
                command = ["/bin/sh", "-c", SHIM, "cq-cgroup", group.procs, *command]
            start = time.monotonic()
            process = _start(command, popen_env, cwd, keep_fds, stderr=subprocess.PIPE)
            try:
                assert process.stdin is not None
                with contextlib.suppress(BrokenPipeError):
                    process.stdin.write(stdin)  # far below a pipe's capacity: never blocks
                process.stdin.close()
                stdout, stderr, proof_data, timed_out, exceeded = _collect(
                    process, timeout, limits.max_output_bytes, proof_read
                )
            finally:
                kill_group(process)
                if self.drops_uid(mounts):
                    sweep_uid(self.uid(slot), thorough=self.bwrap is None)
            memory_exceeded = group is not None and group.oom_killed()
        finally:
            _close_all(keep_fds)
            if proof_read is not None:
                os.close(proof_read)
            if group is not None:
                group.remove()
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
        stdout are pipes, stderr is discarded; ``writable`` folders are shown read-write at their own path."""
        rlimits = [f"--data={data_mb * 1024 * 1024}"]
        keep_fds: list[int] = []
        try:
            command, popen_env, cwd = self._command(
                argv,
                workdir=None,
                mounts=mounts,
                slot=slot,
                nproc=nproc,
                rlimits=rlimits,
                proc=True,
                keep_fds=keep_fds,
                writable=writable,
            )
        except BaseException:
            _close_all(keep_fds)
            raise
        return _start(command, popen_env, cwd, keep_fds, stderr=subprocess.DEVNULL)

    def _command(
        self,
        argv: Sequence[str],
        *,
        workdir: Path | None,
        mounts: Sequence[Mount],
        slot: int,
        nproc: int,
        rlimits: list[str],
        proc: bool,
        keep_fds: list[int],
        writable: Sequence[Path],
    ) -> tuple[list[str], dict[str, str], str | None]:
        """The full command line (bubblewrap, prlimit, setpriv around ``argv``), its environment and folder."""
        uid = self.uid(slot)
        environment = _environment("/tmp" if self.bwrap else str(workdir or tempfile.gettempdir()))
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
            if not self.bwrap and workdir is not None:
                os.chown(workdir, uid, uid)
        if self.prlimit:
            rlimits = [*rlimits, f"--fsize={SCRATCH_MB * 1024 * 1024}", "--nofile=512", f"--nproc={nproc}", "--core=0"]
            command = [self.prlimit, *rlimits, "--", *command]
        if not self.bwrap:
            return command, environment, str(workdir) if workdir is not None else None
        prefix = self._bwrap_prefix(workdir, mounts, environment, proc=proc, writable=writable)
        return self._sealed(prefix, command, keep_fds), {}, None

    def _sealed(self, prefix: list[str], command: list[str], keep_fds: list[int]) -> list[str]:
        """``prefix -- command`` with the seccomp filter handed to bubblewrap on a pipe kept in ``keep_fds``."""
        if self.seccomp:
            read_end, write_end = os.pipe()
            os.write(write_end, self.seccomp)  # a few hundred bytes: fits the pipe
            os.close(write_end)
            keep_fds.append(read_end)
            prefix += ["--seccomp", str(read_end)]
        return [*prefix, "--", *command]

    def zygote_command(
        self, argv: Sequence[str], *, workdir: Path, mounts: Sequence[Mount], keep_fds: list[int], proc: str
    ) -> list[str]:
        """The command of a slot's Python fork server (``forkserver.py``): the run namespaces, mounts and seccomp
        filter, ``workdir`` read-only at /work, /proc at ``proc`` (not /proc: below a folder only root may enter),
        and setpriv keeping
        only ZYGOTE_CAPS, with an empty bounding set (the server's children drop them all with their uid)."""
        environment = _environment("/tmp")
        assert self.setpriv
        prefix = self._bwrap_prefix(
            workdir, mounts, environment, proc=False, writable=(), die_with_parent=False, caps=ZYGOTE_BWRAP_CAPS
        )
        if proc != "/proc":  # below a folder for the server only
            prefix += ["--perms", "0700", "--dir", str(Path(proc).parent)]
        prefix += ["--proc", proc]
        return self._sealed(prefix, [self.setpriv, *ZYGOTE_SETPRIV, "--", *argv], keep_fds)

    def _bwrap_prefix(
        self,
        workdir: Path | None,
        mounts: Sequence[Mount],
        env: dict[str, str],
        *,
        proc: bool,
        writable: Sequence[Path],
        die_with_parent: bool | None = None,
        caps: Sequence[str] | None = None,
    ) -> list[str]:
        assert self.bwrap
        prefix = [
            self.bwrap,
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
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
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(SCRATCH_MB * 1024 * 1024),
            "--tmpfs",
            "/tmp",
            "--perms",
            "0755",
            "--dir",
            "/opt/cq",
        ]
        if die_with_parent if die_with_parent is not None else workdir is not None:
            # A run dies with the thread that started it. A long-lived helper must not (the kernel signals the
            # death of the parent *thread*, and the pool's threads come and go): it exits when its stdin closes.
            prefix.append("--die-with-parent")
        if proc:
            prefix += ["--proc", "/proc"]
        if workdir is not None:
            prefix += ["--ro-bind", str(workdir), "/work"]
        made = {"/", "/usr", "/opt", "/opt/cq", "/tmp"}
        for mount in mounts:
            if mount.inside != str(mount.host) or not mount.host.is_relative_to("/usr"):
                for folder in reversed(Path(mount.inside).parents):  # traversable, not bwrap's default 0700
                    if str(folder) not in made:
                        made.add(str(folder))
                        prefix += ["--perms", "0755", "--dir", str(folder)]
                prefix += ["--ro-bind", str(mount.host), mount.inside]
        for folder in writable:
            prefix += ["--bind", str(folder), str(folder)]
        # As root, setpriv needs CAP_SETUID/SETGID to switch to the slot's uid and CAP_SETPCAP to empty the
        # bounding set; it then drops every capability. Otherwise nothing is kept.
        prefix += ["--cap-drop", "ALL"]
        if caps is None:
            caps = SETPRIV_CAPS if self.root and self.setpriv else ()
        for cap in caps:
            prefix += ["--cap-add", cap]
        prefix += ["--chdir", "/tmp", "--clearenv"]
        for key, value in env.items():
            prefix += ["--setenv", key, value]
        return prefix


class SandboxFailure(RuntimeError):
    """The sandbox itself could not run the program (reported as SandboxError)."""


def _environment(scratch: str) -> dict[str, str]:
    """The scrubbed environment of a sandboxed program whose home and temporary folder is ``scratch``."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": scratch,
        "TMPDIR": scratch,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    fds.clear()


def _start(
    command: list[str], env: dict[str, str], cwd: str | None, keep_fds: list[int], *, stderr: int
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new session with piped stdin and stdout, handing it ``keep_fds``, which are closed
    here (the child holds its copies) whether or not it started."""
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=cwd,
            start_new_session=True,
            pass_fds=keep_fds,
        )
    except OSError as exc:
        raise SandboxFailure(f"cannot start {command[0]}: {exc}") from exc
    finally:
        _close_all(keep_fds)


def _collect(
    process: subprocess.Popen, timeout: float, cap: int, proof_fd: int | None
) -> tuple[bytes, bytes, bytes, bool, bool]:
    """Read stdout, stderr (and the proof pipe) until EOF, the deadline, or more than ``cap`` bytes on one
    stream (the proof pipe keeps at most PROOF_CAP bytes and never stops the run)."""
    assert process.stdout is not None and process.stderr is not None
    buffers: dict = {process.stdout: bytearray(), process.stderr: bytearray()}
    selector = selectors.DefaultSelector()
    for stream in buffers:
        os.set_blocking(stream.fileno(), False)
        selector.register(stream, selectors.EVENT_READ)
    proof = bytearray()
    if proof_fd is not None:
        os.set_blocking(proof_fd, False)
        selector.register(proof_fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    timed_out = exceeded = False
    while selector.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        for key, _ in selector.select(min(remaining, 0.5)):
            if key.fileobj == proof_fd:
                chunk = os.read(proof_fd, 65536)
                if not chunk:
                    selector.unregister(proof_fd)
                elif len(proof) < PROOF_CAP:
                    proof.extend(chunk[: PROOF_CAP - len(proof)])
                continue
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
    if proof_fd is not None and not timed_out and not exceeded:
        with contextlib.suppress(BlockingIOError):
            while len(proof) < PROOF_CAP and (chunk := os.read(proof_fd, PROOF_CAP)):
                proof.extend(chunk)  # written just before the process ended
    out, err = (bytes(buffers[s][:cap]) for s in (process.stdout, process.stderr))
    return out, err, bytes(proof[:PROOF_CAP]), timed_out, exceeded


def kill_group(process: subprocess.Popen) -> None:
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


def sweep_uid(uid: int, *, thorough: bool) -> None:
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
