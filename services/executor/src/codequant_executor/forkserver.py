"""Python fork servers ("zygotes"): one pre-started, pre-imported sandboxed interpreter per slot.

A fresh sandboxed interpreter costs each program bubblewrap, interpreter start-up and its imports (~40 ms on
two cores); forking a warm interpreter costs ~2 ms. Each slot's server (``harness/zygote.py``) lives in its
own bubblewrap namespaces (PID, network, IPC, UTS, mount: /usr read-only, a private size-limited /tmp, the
slot's folder read-only at /work) under the seccomp filter, and forks one child per program; the child drops
to the slot's uid with fresh rlimits and runs the same harness as a fresh interpreter would. What a program
leaves behind (processes, files in /tmp) is removed before the server answers; the executor sweeps the
slot's uid itself when a run was cut short (timeout, output flood) or the server could not remove
everything. Used as root with bubblewrap and no per-run memory cgroup (a child cannot be moved into a cgroup
from inside the namespace); elsewhere each program gets a fresh sandboxed interpreter.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from codequant.limits import Limits
from codequant.text import decode_output
from codequant_executor.harness.tree import copy_tree, remove_tree
from codequant_executor.sandbox import (
    CLEANUP_S,
    PROOF_CAP,
    PROOF_FD,
    Mount,
    Outcome,
    Sandbox,
    SandboxFailure,
    in_lasting_thread,
    sweep_uid,
)
from codequant_executor.sandbox.limits import NOFILE, SCRATCH_MB, cpu_seconds
from codequant_executor.sandbox.process import POLL_S, stop_requested

PROGRAM = "program.py"
#: Where a Python server sees /proc: below a folder only root may enter (its programs run without /proc).
HIDDEN_PROC = "/opt/zygote/proc"
#: How long a server may take to answer once its child was killed (it kills leftovers and empties /tmp).
ANSWER_S = 10.0


@dataclass
class _Server:
    process: subprocess.Popen[bytes]
    control: socket.socket
    folder: Path


class ForkServers:
    """One fork server per slot, started on first use; ``python`` and ``execute`` are thread-safe given distinct
    slots. ``mounts`` must show ``interpreter`` and ``zygote`` (paths inside); ``proc`` mounts /proc where the
    programs see it (the JVM needs it; Python programs run without)."""

    def __init__(
        self,
        sandbox: Sandbox,
        interpreter: str,
        zygote: str,
        mounts: list[Mount],
        folder: Path,
        *,
        name: str,
        proc: bool,
    ) -> None:
        self.sandbox = sandbox
        self.interpreter = interpreter
        self.zygote = zygote
        self.mounts = mounts
        self.folder = folder
        self.name = name
        self.proc = proc
        self._servers: dict[int, _Server] = {}

    @staticmethod
    def usable(sandbox: Sandbox) -> bool:
        """Root (to drop each child to the slot's uid), bubblewrap, and memory bounded by rlimits alone."""
        return sandbox.bwrap is not None and sandbox.root and sandbox.setpriv is not None and sandbox.cgroups is None

    def python(self, program: str, limits: Limits, slot: int, tests_line: int, stdin: bytes, nproc: int) -> Outcome:
        """Run ``program`` (at /work/program.py) through the Python harness in a child of ``slot``'s server."""
        server = self._server(slot)
        (server.folder / PROGRAM).write_text(program, encoding="utf-8")
        fields = self._limits(slot, limits, nproc, address_space=True)
        return self._run(slot, server, limits, [*fields, "python", f"/work/{PROGRAM}", str(tests_line)], stdin)

    def execute(self, argv: list[str], limits: Limits, slot: int, stdin: bytes, nproc: int, classes: Path) -> Outcome:
        """Execute ``argv`` (the JVM) in a child of ``slot``'s server with a copy of ``classes`` at
        /work/classes; the proof pipe is descriptor 3 (``PROOF_FD`` in ``argv``), owned by the slot's uid so
        that the JVM can reopen it as /proc/self/fd/3."""
        server = self._server(slot)
        target = server.folder / "classes"
        if not remove_tree(target, time.monotonic() + CLEANUP_S):
            self._stop(slot)
            raise SandboxFailure(f"cannot empty {target}")
        copy_tree(classes, target)  # javac's output for a program with a deep package: no recursion
        fields = self._limits(slot, limits, nproc, address_space=False)
        argv = ["3" if a == PROOF_FD else a for a in argv]
        return self._run(slot, server, limits, [*fields, "exec", *argv], stdin, proof_owner=self.sandbox.uid(slot))

    def _limits(self, slot: int, limits: Limits, nproc: int, *, address_space: bool) -> list[str]:
        """UID CPU_SOFT CPU_HARD MEMORY_BYTES ADDRESS_SPACE FSIZE NOFILE NPROC, as the server reads them."""
        size = limits.memory_mb * 1024 * 1024
        fields = (self.sandbox.uid(slot), *cpu_seconds(limits.timeout_s), size, int(address_space))
        fields += (SCRATCH_MB << 20, NOFILE, nproc)
        return [str(v) for v in fields]

    def _run(
        self, slot: int, server: _Server, limits: Limits, fields: list[str], stdin: bytes, proof_owner: int = -1
    ) -> Outcome:
        """Send one request with fresh pipes (the child's standard input carries ``stdin``) and collect it."""
        ends: list[int] = []
        ours: list[int] = []
        try:
            for _ in range(4):
                read, write = os.pipe()
                ours.append(read)
                ends.append(write)
            # The child reads standard input and writes the other three: swap the first pair's ends.
            ours[0], ends[0] = ends[0], ours[0]
            if proof_owner >= 0:
                os.fchown(ends[3], proof_owner, proof_owner)
            start = time.monotonic()
            try:
                socket.send_fds(server.control, ["\0".join(fields).encode()], ends)
            except OSError as exc:
                self._stop(slot)
                raise SandboxFailure(f"the fork server of slot {slot} is gone: {exc}") from exc
            for fd in ends:
                os.close(fd)
            ends.clear()
            with contextlib.suppress(BrokenPipeError):
                os.write(ours[0], stdin)  # far below a pipe's capacity: never blocks
            os.close(ours.pop(0))
            stdout_fd, stderr_fd, proof_fd = ours
            return self._collect(slot, server, limits, stdout_fd, stderr_fd, proof_fd, start)
        finally:
            for fd in ends + ours:
                os.close(fd)

    def _collect(
        self, slot: int, server: _Server, limits: Limits, stdout_fd: int, stderr_fd: int, proof_fd: int, start: float
    ) -> Outcome:
        """Read output and proof until the server's answer and EOF, the deadline, or the output cap."""
        buffers = {stdout_fd: bytearray(), stderr_fd: bytearray(), proof_fd: bytearray()}
        answer = bytearray()
        selector = selectors.DefaultSelector()
        for fd in buffers:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        selector.register(server.control, selectors.EVENT_READ)
        deadline = start + limits.timeout_s
        cap = limits.max_output_bytes
        timed_out = exceeded = False
        code: int | None = None
        try:
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or stop_requested():
                    timed_out = True
                    break
                for key, _ in selector.select(min(remaining, POLL_S)):
                    if key.fileobj is server.control:
                        chunk = server.control.recv(256)
                        if not chunk:
                            self._stop(slot)
                            raise SandboxFailure(f"the fork server of slot {slot} stopped")
                        answer.extend(chunk)
                        if answer.endswith(b"\n"):
                            code = _exit_code(slot, answer)
                            selector.unregister(server.control)
                        continue
                    fd = key.fd
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        selector.unregister(fd)
                        continue
                    limit = PROOF_CAP if fd == proof_fd else cap + 1
                    if len(buffers[fd]) < limit:
                        buffers[fd].extend(chunk[: limit - len(buffers[fd])])
                    if fd != proof_fd and len(buffers[fd]) > cap:
                        exceeded = True
                if exceeded:
                    break
        finally:
            selector.close()
        duration = time.monotonic() - start
        if code is None or not answer.endswith(b" clean\n"):
            # Cut short (the child and everything it started, by uid, non-dumpable ones too: the server then
            # answers) or not all leftovers gone: the executor's own sweep.
            sweep_uid(self.sandbox.uid(slot), thorough=True)
        if code is None:
            code = self._answer(slot, server, answer)
        if answer.endswith(b" leftovers\n"):
            self._stop(slot)  # /tmp not emptied in time (or a process it could not end): a fresh server next
        return Outcome(
            exit_code=code,
            stdout=decode_output(bytes(buffers[stdout_fd][:cap])),
            stderr=decode_output(bytes(buffers[stderr_fd][:cap])),
            timed_out=timed_out,
            output_exceeded=exceeded,
            duration_s=duration,
            proof=bytes(buffers[proof_fd][:PROOF_CAP]) if not (timed_out or exceeded) else b"",
        )

    def _answer(self, slot: int, server: _Server, answer: bytearray) -> int | None:
        """Wait for the server's answer after the run was cut short; a server that does not answer is stopped."""
        server.control.settimeout(ANSWER_S)
        try:
            while not answer.endswith(b"\n"):
                chunk = server.control.recv(256)
                if not chunk:
                    raise OSError("the fork server stopped")
                answer.extend(chunk)
            return _exit_code(slot, answer)
        except (OSError, SandboxFailure):
            self._stop(slot)
            return None
        finally:
            server.control.settimeout(None)

    def _server(self, slot: int) -> _Server:
        server = self._servers.get(slot)
        if server is not None and server.process.poll() is None:
            return server
        if server is not None:
            self._stop(slot)
        folder = self.folder / f"{self.name}-{slot}"
        folder.mkdir(mode=0o755, exist_ok=True)
        folder.chmod(0o755)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        keep_fds = [theirs.fileno()]
        proc = "/proc" if self.proc else HIDDEN_PROC
        argv = [self.interpreter, "-I", "-S", self.zygote, str(theirs.fileno()), proc]
        try:
            command = self.sandbox.zygote_command(
                argv, workdir=folder, mounts=self.mounts, keep_fds=keep_fds, proc=proc
            )
            process = in_lasting_thread(  # it dies with the executor, not with this worker thread
                lambda: subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env={},
                    start_new_session=True,
                    pass_fds=keep_fds,
                )
            )
        except OSError as exc:
            ours.close()
            raise SandboxFailure(f"cannot start the fork server of slot {slot}: {exc}") from exc
        finally:
            theirs.close()
            for fd in keep_fds[1:]:
                os.close(fd)
        self._servers[slot] = _Server(process, ours, folder)
        return self._servers[slot]

    def _stop(self, slot: int) -> None:
        server = self._servers.pop(slot, None)
        if server is None:
            return
        server.control.close()  # the server exits when its socket closes; bubblewrap then ends the namespace
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, 9)
            server.process.wait()
        sweep_uid(self.sandbox.uid(slot), thorough=False)
        Sandbox.cleanup(server.folder)

    def close(self) -> None:
        for slot in list(self._servers):
            self._stop(slot)


def _exit_code(slot: int, answer: bytearray) -> int:
    text = answer.decode("ascii", "replace").strip()
    if not text.startswith("exit "):
        raise SandboxFailure(f"the fork server of slot {slot} failed: {text}")
    return int(text.split()[1])
