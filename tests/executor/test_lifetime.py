"""Nothing the executor starts outlives it: a killed executor takes its programs, fork servers and compile servers
with it (they die with the thread that started them, the spawner thread for servers); compilation counts against
the program's timeout; a program out of CPU time is a Timeout, however many threads burn it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codequant.limits import Limits
from codequant_executor.pool import ExecutorPool
from codequant_executor.status import Status

EXECUTOR = """
import json, sys
from codequant.limits import Limits
from codequant_executor.pool import ExecutorPool
pool = ExecutorPool(workers=2)
pool.runner("java").compiler.compile  # compile servers start in the background
print(json.dumps(pool.run_slots + pool.compile_slots), flush=True)
sleepers = [("import time\\ntime.sleep(90)", "python"), ("#include <unistd.h>\\nint main() { sleep(90); }", "cpp")]
pool.run_many(sleepers, Limits(timeout_s=120.0, memory_mb=512))
"""


def descendants(root: int) -> set[int]:
    """Every process below ``root`` now."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def uid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
    except (OSError, StopIteration):
        return None


def alive(pids: set[int]) -> set[int]:
    """The ones still running (not zombies)."""
    running = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] != "Z":
                    running.add(pid)
        except OSError:
            continue
    return running


@pytest.mark.slow
def test_a_killed_executor_takes_every_program_and_server_with_it() -> None:
    """SIGKILL an executor while a Python program (in its slot's fork server) and a C++ program sleep and its
    Java compile servers are up: within seconds none of them, nor any process they started, is left."""
    from codequant_executor.sandbox import UID_BASE

    executor = subprocess.Popen([sys.executable, "-c", EXECUTOR], stdout=subprocess.PIPE, text=True)
    try:
        assert executor.stdout is not None
        uids = {UID_BASE + slot for slot in json.loads(executor.stdout.readline())}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # both sleepers and both compile servers running
            below = descendants(executor.pid)
            if len({uid_of(pid) for pid in below} & uids) >= 4:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the sleepers and compile servers did not start")
        time.sleep(0.5)
        below = descendants(executor.pid)
    finally:
        executor.send_signal(signal.SIGKILL)
        executor.wait()
    deadline = time.monotonic() + 15
    while alive(below) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in alive(below)}
    assert not left, f"outlived the executor: {left}"


BURNERS = {
    "python": (
        "import threading\ndef burn():\n    while True:\n        pass\n"
        "for _ in range(4):\n    threading.Thread(target=burn).start()\n"
    ),
    "cpp": (
        "#include <thread>\n#include <vector>\n#include <csignal>\n"
        "int main() { signal(SIGXCPU, SIG_IGN); std::vector<std::thread> t;\n"
        "  for (int i = 0; i < 4; i++) t.emplace_back([] { volatile long x = 0; for (;;) x++; });\n"
        "  for (auto &x : t) x.join(); }\n"
    ),
    "cpp-plain": (
        "#include <thread>\n#include <vector>\nint main() { std::vector<std::thread> t;\n"
        "  for (int i = 0; i < 4; i++) t.emplace_back([] { volatile long x = 0; for (;;) x++; });\n"
        "  for (auto &x : t) x.join(); }\n"
    ),
    "javascript": (
        "const { Worker } = require('worker_threads');\n"
        "for (let i = 0; i < 3; i++) new Worker('for (;;) {}', { eval: true });\nfor (;;) {}\n"
    ),
}


@pytest.mark.slow
def test_a_program_out_of_cpu_time_is_a_timeout_however_many_threads_burn_it(pool: ExecutorPool) -> None:
    """Threads burning CPU in parallel reach the CPU limit before the wall clock: the soft limit (SIGXCPU) comes
    first, the hard one (SIGKILL) only past what the wall clock allows, so the verdict is Timeout, never Killed,
    even for a program that ignores SIGXCPU."""
    jobs = [(program, language.split("-")[0]) for language, program in BURNERS.items()]
    verdicts = pool.run_many(jobs, Limits(timeout_s=4.0, memory_mb=512))
    assert [v.status for v in verdicts] == [Status.TIMEOUT] * len(jobs), [(v.status, v.exit_code) for v in verdicts]


CONSTEXPR = (
    "constexpr long busy() { long s = 0;\n"
    "  for (int i = 0; i < 200000; i++) for (int j = 0; j < 200000; j++) s += i ^ j;\n  return s; }\n"
    "constexpr long x = busy();\nint main() { return x == 0; }\n"
)


@pytest.mark.slow
def test_compiling_counts_against_the_programs_timeout(pool: ExecutorPool) -> None:
    """~200 bytes of constexpr evaluation keep g++ busy for minutes: compiling gets the program's own timeout
    (not a minute of its own), and what it took is taken from the run's."""
    from codequant_executor.outcome import Verdict
    from codequant_executor.runner import after_compiling

    started = time.monotonic()
    verdict = pool.run_one(CONSTEXPR, "cpp", Limits(timeout_s=4.0, memory_mb=512))
    assert verdict.status is Status.TIMEOUT and "compiling took" in verdict.stderr, verdict
    assert time.monotonic() - started < 20
    limits = Limits(timeout_s=8.0, memory_mb=512)
    assert after_compiling(limits, 3.0) == Limits(timeout_s=5.0, memory_mb=512)
    left = after_compiling(limits, 8.5)
    assert isinstance(left, Verdict) and left.status is Status.TIMEOUT
