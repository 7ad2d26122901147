"""Hostile programs in both languages: each gets the right status and leaves the host unharmed."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from codequant_executor.pool import ExecutorPool
from tests.executor.conftest import FAST, sandbox_processes

SECRET = "redis://:hunter2@broker.internal:6379/0"


@pytest.fixture(scope="module")
def canary() -> Path:
    """A world-readable file outside any work folder, which no program may read, change or delete."""
    folder = Path(tempfile.mkdtemp(prefix="cq-canary-"))
    folder.chmod(0o755)
    path = folder / "canary.txt"
    path.write_text("canary-4f1e")
    path.chmod(0o666)
    return path


@pytest.fixture(scope="module")
def listener() -> dict:
    """A TCP listener on 127.0.0.1 that records every connection a program manages to open."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    state = {"port": server.getsockname()[1], "connections": 0}

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            state["connections"] += 1
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    yield state
    server.close()


def python_cases(canary: Path, port: int) -> dict[str, tuple[str, set[str]]]:
    return {
        "fork_bomb": (
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            {"Timeout", "Exception"},
        ),
        "thread_explosion": (
            "import threading, time\nfor _ in range(100000):\n"
            "    threading.Thread(target=time.sleep, args=(100,)).start()\n",
            {"Exception", "Timeout"},
        ),
        "memory_bomb": ("x = bytearray(8 * 1024 ** 3)\n", {"MemoryLimit"}),
        "memory_creep": ("x = []\nwhile True:\n    x.append(bytearray(10 ** 7))\n", {"MemoryLimit"}),
        "infinite_loop": ("while True:\n    pass\n", {"Timeout"}),
        "sleep_forever": ("import time\ntime.sleep(10 ** 6)\n", {"Timeout"}),
        "setsid_daemon": (
            "import subprocess\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
            "import os\nif os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(1000)\n",
            {"OK"},
        ),
        "runaway_stdout": ("while True:\n    print('x' * 1000)\n", {"OutputLimit"}),
        "disk_fill": (
            "with open('fill.bin', 'wb') as f:\n    while True:\n        f.write(b'x' * 10 ** 6)\n",
            {"Exception", "Killed"},
        ),
        "read_outside": (f"print(open({str(canary)!r}).read())\n", {"Exception"}),
        "write_outside": (f"open({str(canary)!r}, 'w').write('pwned')\n", {"Exception"}),
        "delete_files": (
            f"import os, shutil\nshutil.rmtree('/usr/share/doc', ignore_errors=True)\nos.remove({str(canary)!r})\n",
            {"Exception"},
        ),
        "network": (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n", {"Exception"}),
        "environment": ("import os\nprint(dict(os.environ))\n", {"OK"}),
        "kill_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", {"Exception", "Killed"}),
        "kill_everything": ("import os, signal\nos.kill(-1, signal.SIGKILL)\n", {"Killed", "Exception"}),
        "sys_exit_before_tests": ("import sys\nsys.exit(0)\nassert False\n", {"Exception"}),
        "os_exit_before_tests": ("import os\nos._exit(0)\nassert False\n", {"Exception"}),
        "exit_inside_function_under_test": ("import sys\ndef f():\n    sys.exit(0)\nf()\n", {"Exception"}),
        "deep_recursion": ("def f(n):\n    return f(n + 1)\nf(0)\n", {"Exception"}),
    }


def java_program(body: str, extra: str = "") -> str:
    return (
        f"import java.util.*;\nimport java.io.*;\nimport java.net.*;\nclass Problem {{\n{extra}\n"
        f"    public static void main(String[] args) throws Exception {{\n{body}\n    }}\n}}\n"
    )


def java_cases(canary: Path, port: int) -> dict[str, tuple[str, set[str]]]:
    return {
        "fork_bomb": (
            java_program(
                'while (true) { try { new ProcessBuilder("sleep", "100").start(); } catch (IOException e) { } }'
            ),
            {"Timeout", "Exception"},
        ),
        "thread_explosion": (
            java_program(
                "for (int i = 0; i < 100000; i++) { Thread t = new Thread(() -> {"
                " try { Thread.sleep(100000); } catch (InterruptedException e) {} });"
                " t.setDaemon(true); t.start(); }"
            ),
            {"Exception", "MemoryLimit"},
        ),
        "memory_bomb": (java_program("long[] x = new long[1 << 30]; System.out.println(x.length);"), {"MemoryLimit"}),
        "infinite_loop": (java_program("while (true) { }"), {"Timeout"}),
        "sleep_forever": (java_program("Thread.sleep(1000000000L);"), {"Timeout"}),
        # The security manager lets a Java program start no process at all.
        "daemon_process": (java_program('new ProcessBuilder("setsid", "sleep", "1000").start();'), {"Exception"}),
        "runaway_stdout": (java_program('while (true) { System.out.println("x".repeat(1000)); }'), {"OutputLimit"}),
        "disk_fill": (
            java_program(
                'try (FileOutputStream f = new FileOutputStream("fill.bin")) {'
                " byte[] b = new byte[1000000]; while (true) { f.write(b); } }"
            ),
            {"Exception", "Killed"},
        ),
        "read_outside": (
            java_program(
                f'System.out.println(new String(java.nio.file.Files.readAllBytes(java.nio.file.Path.of("{canary}"))));'
            ),
            {"Exception"},
        ),
        "delete_files": (
            java_program(f'if (!new File("{canary}").delete()) throw new RuntimeException("no");'),
            {"Exception"},
        ),
        "network": (java_program(f'new Socket("127.0.0.1", {port}).close();'), {"Exception"}),
        "environment": (java_program("System.out.println(System.getenv());"), {"OK"}),
        "system_exit_before_tests": (java_program("System.exit(0);\nassert false;"), {"Exception"}),
        "halt_before_tests": (java_program("Runtime.getRuntime().halt(0);"), {"Exception"}),
        "deep_recursion": (java_program("f(0);", "    static int f(int n) { return f(n + 1) + 1; }"), {"Exception"}),
        "non_daemon_thread": (
            java_program(
                "new Thread(() -> { while (true) { try { Thread.sleep(1000); }"
                " catch (InterruptedException e) { } } }).start();"
            ),
            {"Timeout"},
        ),
    }


@pytest.mark.parametrize("language", ["python", "java"])
def test_hostile_programs(
    language: str, pool: ExecutorPool, canary: Path, listener: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEQUANT_BROKER_URL", SECRET)
    cases = (python_cases if language == "python" else java_cases)(canary, listener["port"])
    names = list(cases)
    before = set(os.listdir(tempfile.gettempdir()))
    start = time.monotonic()
    # Each Python snippet is the "completion"; a last line stands for the benchmark's tests.
    if language == "python":
        jobs = [(cases[n][0] + "\npass\n", language, cases[n][0].count("\n") + 2) for n in names]
    else:
        jobs = [(cases[n][0], language) for n in names]
    verdicts = pool.run_many(jobs, FAST)
    elapsed = time.monotonic() - start
    wrong = {
        n: (v.status, v.stderr[-300:]) for n, v in zip(names, verdicts, strict=True) if str(v.status) not in cases[n][1]
    }
    assert not wrong, wrong
    by_name = dict(zip(names, verdicts, strict=True))
    assert not any(v.passed for n, v in by_name.items() if n not in ("setsid_daemon", "environment"))
    # The host is unharmed.
    assert canary.read_text() == "canary-4f1e"
    assert Path("/usr/share/doc").is_dir()
    assert listener["connections"] == 0
    assert SECRET not in by_name["environment"].stdout and "hunter2" not in by_name["environment"].stdout
    assert "canary-4f1e" not in by_name["read_outside"].stdout
    assert sandbox_processes(pool) == [], "a sandboxed process outlived its run"
    left = set(os.listdir(tempfile.gettempdir())) - before
    spools = {name for name in left if name.startswith("cq-spool-")}  # the compile servers' folder lives on
    assert left - spools == set() and not any(os.listdir(Path(tempfile.gettempdir(), s)) for s in spools), left
    assert elapsed < len(names) * (FAST.timeout_s + 5) / pool.workers + 30
