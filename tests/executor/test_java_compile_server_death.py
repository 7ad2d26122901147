"""A Java compile server that dies while it compiles a program: the program is compiled again on a fresh server
and gets its own verdict; only a program on which two servers die gets the crash verdict (docs/executor.md).
Real JVMs in the real sandbox: the test SIGKILLs the server's JVM, as the kernel's OOM killer would, once javac
has written some but not all of the program's class files."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codequant.limits import Limits
from codequant_executor.pool import ExecutorPool
from codequant_executor.sandbox import UID_BASE
from codequant_executor.status import Status

#: Enough classes that javac writes their class files over a span the test can land a kill in.
CLASSES = 1500
BIG = "".join(f"class C{i} {{ static int f(int x) {{ return x + {i}; }} }}\n" for i in range(CLASSES))
BIG += f"class Main {{ public static void main(String[] a) {{ assert C{CLASSES - 1}.f(1) == {CLASSES}; }} }}\n"
SMALL = "class Main { public static void main(String[] a) { assert 1 + 1 == 2; } }\n"
#: Compiling counts against the timeout; a loaded 2-core host compiles the big program in seconds.
LIMITS = Limits(timeout_s=120.0, memory_mb=512, max_output_bytes=64_000)
CRASHED = "the compiler ran out of memory or crashed on this program"


@pytest.fixture()
def one_server() -> Iterator[ExecutorPool]:
    """One worker, so one compile server, with its runner started (and its server warm) by a first program."""
    pool = ExecutorPool(workers=1)
    try:
        assert pool.run_one(SMALL, "java", LIMITS).status == Status.OK
        yield pool
    finally:
        pool.close()


def server_jvms(uid: int) -> set[int]:
    """PIDs of the compile-server JVMs running as ``uid`` (a slot this test's pool holds: no one else's)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                real_uid = next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except (OSError, StopIteration):
            continue
        if real_uid == uid and argv[0].endswith(b"/java") and b"CompileServer" in argv:
            found.add(int(entry))
    return found


class ServerKiller(threading.Thread):
    """Kills the compile-server JVM of ``uid`` (up to ``times`` of them, one after another) as soon as it has
    written a class file into a program's output folder under ``spool`` (one absent, or older, when that JVM was
    first seen); records how many class files each killed JVM had written."""

    def __init__(self, uid: int, spool: Path, times: int) -> None:
        super().__init__(daemon=True)
        self.uid, self.spool, self.times = uid, spool, times
        self.killed: list[int] = []
        self.written_at_kill: list[int] = []
        self.done = threading.Event()

    def _class_files(self) -> dict[Path, int]:
        return {path: path.stat().st_mtime_ns for path in self.spool.glob("*/classes/*.class")}

    def run(self) -> None:
        before: dict[int, dict[Path, int]] = {}  # JVM -> the class files there when it was first seen
        while len(self.killed) < self.times and not self.done.is_set():
            for pid in server_jvms(self.uid) - set(self.killed):
                seen = before.setdefault(pid, self._class_files())
                written = [path for path, mtime in self._class_files().items() if seen.get(path) != mtime]
                if written:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
                    self.written_at_kill.append(len(written))
            time.sleep(0.005)


def _kill_while_compiling(pool: ExecutorPool, times: int) -> tuple[Status, str, ServerKiller, int]:
    uid = UID_BASE + pool.compile_slots[0]
    spool = pool.runner("java").spool
    killer = ServerKiller(uid, spool, times)
    killer.start()
    try:
        verdict = pool.run_one(BIG, "java", LIMITS)
    finally:
        killer.done.set()
        killer.join()
    return verdict.status, verdict.stderr, killer, uid


def test_a_program_whose_server_dies_mid_compilation_gets_its_verdict_from_a_fresh_server(
    one_server: ExecutorPool,
) -> None:
    status, stderr, killer, uid = _kill_while_compiling(one_server, 1)
    assert len(killer.killed) == 1 and 0 < killer.written_at_kill[0] < CLASSES + 1, killer.written_at_kill
    assert status == Status.OK, stderr
    # A server started after the kill answered: a server killed after answering would leave none running.
    alive = server_jvms(uid)
    assert alive and killer.killed[0] not in alive


def test_a_program_that_kills_two_servers_gets_the_crash_verdict_and_the_next_program_a_fresh_server(
    one_server: ExecutorPool,
) -> None:
    status, stderr, killer, uid = _kill_while_compiling(one_server, 2)
    assert len(killer.killed) == 2 and all(0 < n < CLASSES + 1 for n in killer.written_at_kill), killer.written_at_kill
    assert status == Status.SYNTAX_ERROR and CRASHED in stderr, (status, stderr)
    assert not server_jvms(uid)  # the second dead server is not replaced until the next program
    assert one_server.run_one(SMALL, "java", LIMITS).status == Status.OK
    assert server_jvms(uid) - set(killer.killed)
