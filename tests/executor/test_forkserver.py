"""The Python fork servers: nothing a program does reaches the next program of the same slot."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codequant.limits import Limits
from codequant_executor.forkserver import ForkServers
from codequant_executor.java_runner import JVM_FLAGS, NPROC, archive_name
from codequant_executor.pool import ExecutorPool
from codequant_executor.sandbox import PROOF_FD, Sandbox
from tests.executor.conftest import FAST

needs_servers = pytest.mark.skipif(not ForkServers.usable(Sandbox()), reason="needs root, bubblewrap, no cgroup")

LEAVE_BEHIND = r"""
import math, os, socket, sys, time
math.pi = 3
sys.modules["json"] = None
open("/tmp/left.txt", "w").write("from the first program")
os.mkdir("/tmp/folder", 0o700)
open("/tmp/folder/inside", "w").write("x")
if os.fork() == 0:
    os.setsid()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    listener.bind(("127.0.0.1", 5555))
    listener.listen()
    while True:
        try:
            open("/tmp/daemon.txt", "a").write(".")
        except OSError:
            pass
        time.sleep(0.01)
time.sleep(0.2)
print(math.pi, len(os.listdir("/tmp")))
"""

LOOK_AROUND = r"""
import json, math, os, socket, time
seen = sorted(os.listdir("/tmp"))
time.sleep(0.3)  # a surviving daemon would write again meanwhile
listener = socket.socket()
listener.bind(("127.0.0.1", 5555))  # fails while the first program's daemon holds the port
print(json.dumps({"pi": math.pi, "tmp": seen, "tmp_later": sorted(os.listdir("/tmp")), "uid": os.getuid()}))
"""


@pytest.fixture(scope="module")
def one_slot() -> Iterator[ExecutorPool]:
    pool = ExecutorPool(workers=1)
    yield pool
    pool.close()


@needs_servers
def test_nothing_crosses_from_one_program_to_the_next(one_slot: ExecutorPool) -> None:
    assert one_slot.runner("python").servers is not None
    first = one_slot.run_one(LEAVE_BEHIND, "python", FAST)
    assert first.status == "OK" and first.stdout.startswith("3 "), first.stderr
    second = one_slot.run_one(LOOK_AROUND, "python", FAST)
    assert second.status == "OK", second.stderr
    seen = json.loads(second.stdout)
    assert seen["pi"] != 3 and seen["tmp"] == [] and seen["tmp_later"] == []
    assert seen["uid"] - 62000 in one_slot.run_slots


@needs_servers
def test_a_program_that_times_out_or_floods_leaves_a_working_server(one_slot: ExecutorPool) -> None:
    assert one_slot.run_one("while True:\n    pass\n", "python", FAST).status == "Timeout"
    assert one_slot.run_one("import time\ntime.sleep(60)\n", "python", FAST).status == "Timeout"
    assert one_slot.run_one("print('x' * 10 ** 6)\n", "python", FAST).status == "OutputLimit"
    assert one_slot.run_one("x = bytearray(8 * 1024 ** 3)\n", "python", FAST).status == "MemoryLimit"
    after = one_slot.run_one("print(sum(range(10)))\n", "python", FAST)
    assert after.status == "OK" and after.stdout == "45\n"


@needs_servers
def test_programs_see_the_same_interpreter_as_a_fresh_one(one_slot: ExecutorPool) -> None:
    """atexit handlers, non-daemon threads, exit codes and messages behave as at the end of `python PROGRAM`."""
    program = (
        "import atexit, sys, threading, time\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "threading.Thread(target=lambda: (time.sleep(0.1), print('thread ran'))).start()\n"
        "sys.exit('bye')\n"
    )
    verdict = one_slot.run_one(program, "python", FAST)
    assert verdict.exit_code == 1 and verdict.stderr.startswith("bye")
    assert verdict.stdout == "thread ran\natexit ran\n"
    assert one_slot.run_one("import os\nos._exit(7)\n", "python", FAST).exit_code == 7
    assert one_slot.run_one("import os, signal\nos.kill(os.getpid(), 9)\n", "python", FAST).status == "Killed"


@needs_servers
def test_children_hold_no_capabilities_and_keep_the_filter(one_slot: ExecutorPool) -> None:
    program = (
        "import os\n"
        "for call in (lambda: os.setuid(0), lambda: os.chown('/tmp', 0, 0), lambda: os.setgroups([0])):\n"
        "    try:\n        call()\n        print('allowed')\n    except OSError as e:\n"
        "        print(type(e).__name__)\n"
        "print(os.getresuid(), os.getgroups())\n"
    )
    verdict = one_slot.run_one(program, "python", FAST)
    assert verdict.status == "OK", verdict.stderr
    assert "allowed" not in verdict.stdout and "[]" in verdict.stdout


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as handle:
        return dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)


def _server_processes() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            if entry.isdigit() and b"zygote.py" in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
    return found


@needs_servers
def test_server_and_children_capabilities_seen_from_the_host(one_slot: ExecutorPool) -> None:
    """The server keeps five capabilities and no bounding set; a running program holds none at all."""
    uid = 62000 + one_slot.run_slots[0]
    with ThreadPoolExecutor(1) as background:
        running = background.submit(one_slot.run_one, "import time\ntime.sleep(2)\n", "python", FAST)
        deadline = time.monotonic() + 10
        servers: list[dict[str, str]] = []
        children: list[dict[str, str]] = []
        while not children and time.monotonic() < deadline:
            statuses = [_status(pid) for pid in _server_processes()]
            servers = [s for s in statuses if s["Uid"].split()[0] == "0" and s["PPid"] != "0"]
            children = [s for s in statuses if s["Uid"].split()[0] == str(uid)]
            time.sleep(0.05)
        assert running.result().status == "OK"
    assert children, "no running program found"
    for status in children:
        assert all(int(status[name], 16) == 0 for name in ("CapPrm", "CapEff", "CapBnd", "CapAmb")), status
        assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
    ours = [s for s in servers if int(s["CapBnd"], 16) == 0]
    assert ours and all(int(s["CapEff"], 16) == 0xEA and s["Seccomp"] == "2" for s in ours)


def test_system_v_and_posix_ipc_are_refused(tmp_path: Path) -> None:
    sandbox = Sandbox()
    if "seccomp" not in sandbox.layers:
        pytest.skip("needs the seccomp filter")
    for argv in (["/usr/bin/ipcmk", "-Q"], ["/usr/bin/ipcmk", "-S", "1"], ["/usr/bin/ipcmk", "-M", "4096"]):
        outcome = sandbox.run(argv, workdir=tmp_path, mounts=[], limits=FAST, slot=902, nproc=64, memory="data")
        assert outcome.exit_code != 0, (argv, outcome.stdout)


@needs_servers
def test_java_runs_through_the_fork_server_with_the_same_harness(one_slot: ExecutorPool) -> None:
    """Assertions, the security manager and the proof work as in a fresh sandbox; nothing crosses runs."""
    assert one_slot.runner("java").servers is not None
    main = "class P {{ public static void main(String[] a) throws Exception {{ {} }} }}"
    jobs = {
        "fails": main.format("assert 1 == 2;"),
        "no_files": main.format('new java.io.FileOutputStream("/tmp/left").write(1);'),
        "no_exit": main.format("System.exit(0);"),
        "passes": main.format('System.out.println("ok");'),
    }
    verdicts = {name: one_slot.run_one(program, "java", FAST) for name, program in jobs.items()}
    assert {name: str(v.status) for name, v in verdicts.items()} == {
        "fails": "Failure",
        "no_files": "Exception",
        "no_exit": "Exception",
        "passes": "OK",
    }
    assert verdicts["passes"].stdout == "ok\n"
    assert "AccessControlException" in verdicts["no_files"].stderr


def test_harness_archive_is_keyed_by_the_base_archive_it_is_layered_on(tmp_path: Path) -> None:
    """A dynamic archive made on another base archive is silently ignored: a regenerated base needs a new one."""
    (tmp_path / "lib" / "server").mkdir(parents=True)
    (tmp_path / "release").write_text('JAVA_VERSION="17.0.15"\n')
    base = tmp_path / "lib" / "server" / "classes.jsa"
    base.write_bytes(b"base")
    first = archive_name(tmp_path)
    assert first == archive_name(tmp_path)
    os.utime(base, ns=(0, 12345))
    assert archive_name(tmp_path) != first
    (tmp_path / "release").write_text('JAVA_VERSION="17.0.16"\n')
    assert len({first, archive_name(tmp_path)}) == 2


@needs_servers
def test_java_runs_map_the_harness_and_security_manager_classes_from_the_archive(one_slot: ExecutorPool) -> None:
    """Every run maps the harness's archive (on top of the JDK's, with its module graph) instead of loading."""
    runner = one_slot.runner("java")
    assert any(flag.startswith("-XX:SharedArchiveFile=") for flag in runner.sharing)
    program = "class P { public static void main(String[] a) { java.util.List.of(1).forEach(x -> {}); } }"
    work = runner.sandbox.workdir(runner.spool)
    try:
        (work / "classes").mkdir(mode=0o755)
        (work / "P.java").write_text(program)
        assert runner.compiler.compile(work / "P.java", work / "classes", runner.jar_inside, 60).ok
        argv = [runner.java, *JVM_FLAGS, *runner.sharing, "-Xlog:class+load=info,cds=info:stdout", "-Xmx256m", "-cp"]
        argv += [runner.harness, "CqHarness", "/work/classes", runner.jar_inside, "P", PROOF_FD]
        limits = Limits(10.0, 1024, max_output_bytes=10_000_000)
        secret = b"0" * 32 + b"\n"
        outcome = runner.servers.execute(argv, limits, one_slot.run_slots[0], secret, NPROC, work / "classes")
    finally:
        runner.sandbox.cleanup(work)
    assert "full module graph: enabled" in outcome.stdout
    for name in ("CqHarness", "CqHarness$Guard", "java.lang.SecurityManager$1"):
        assert f"] {name} source: shared objects file (top)" in outcome.stdout, name
