"""Running one sandboxed command: start it in a new session, feed its standard input, collect capped stdout,
stderr and the harness's proof until EOF or the deadline, kill its process group, sweep its uid."""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

#: At most this much of what the harness writes to its proof descriptor is kept.
PROOF_CAP = 4096
T = TypeVar("T")
#: How often a wait looks at the stop request (``stop_requested``) at the latest.
POLL_S = 0.25
_local = threading.local()


def set_stop_event(event: threading.Event | None) -> None:
    """Make ``event`` this thread's stop request: once it is set, every sandboxed process this thread waits for
    is ended as if its time were up (the caller stopped: Ctrl-C), within ``POLL_S``."""
    _local.stop = event


def stop_requested() -> bool:
    """Whether this thread's stop request (``set_stop_event``) is set."""
    event = getattr(_local, "stop", None)
    return event is not None and event.is_set()


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


class SandboxFailure(RuntimeError):
    """The sandbox itself could not run the program (reported as SandboxError)."""


def close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    fds.clear()


def start_process(
    command: list[str], env: dict[str, str], cwd: str | None, keep_fds: list[int], *, stderr: int, lasting: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new session with piped stdin and stdout, handing it ``keep_fds``, which are closed
    here (the child holds its copies) whether or not it started. A ``lasting`` process (a server that outlives
    the call) is started by the process's spawner thread (``in_lasting_thread``)."""

    def start() -> subprocess.Popen[bytes]:
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

    try:
        return in_lasting_thread(start) if lasting else start()
    except OSError as exc:
        raise SandboxFailure(f"cannot start {command[0]}: {exc}") from exc
    finally:
        close_all(keep_fds)


class _Spawner:
    """One daemon thread that starts every long-lived sandboxed server (fork servers, compile servers).

    bubblewrap's ``--die-with-parent`` ends a sandbox when the *thread* that started it ends (the kernel's
    parent-death signal follows the thread): started from a pool's worker thread, which comes and goes, a
    server would die early; started without it, a server (and the program it runs) outlived a killed
    executor. This thread lives exactly as long as the process, so every server dies with the executor."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="codequant-spawner", daemon=True).start()

    def _serve(self) -> None:
        while True:
            call, box, done = self._requests.get()
            try:
                box.append((True, call()))
            except BaseException as exc:
                box.append((False, exc))
            done.set()

    def call(self, call: Callable[[], T]) -> T:
        box: list = []
        done = threading.Event()
        self._requests.put((call, box, done))
        done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def in_lasting_thread(call: Callable[[], T]) -> T:
    """``call()`` run by the thread that lives as long as this process (``_Spawner``)."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.call(call)


def collect_output(
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
        if remaining <= 0 or stop_requested():
            timed_out = True
            break
        for key, _ in selector.select(min(remaining, POLL_S)):
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
        timed_out = not wait_until(process, deadline)
    if proof_fd is not None and not timed_out and not exceeded:
        with contextlib.suppress(BlockingIOError):
            while len(proof) < PROOF_CAP and (chunk := os.read(proof_fd, PROOF_CAP)):
                proof.extend(chunk)  # written just before the process ended
    out, err = (bytes(buffers[s][:cap]) for s in (process.stdout, process.stderr))
    return out, err, bytes(proof[:PROOF_CAP]), timed_out, exceeded


def wait_until(process: subprocess.Popen, deadline: float) -> bool:
    """Wait for ``process`` to end until ``deadline`` (at least 0.1 s) or a stop request; whether it ended."""
    end = max(deadline, time.monotonic() + 0.1)
    while not stop_requested():
        try:
            process.wait(timeout=min(POLL_S, max(0.0, end - time.monotonic())))
            return True
        except subprocess.TimeoutExpired:
            if time.monotonic() >= end:
                return False
    return False


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group (with bubblewrap this ends the whole PID namespace)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


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
