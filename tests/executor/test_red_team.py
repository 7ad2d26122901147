"""Every containment break and false verdict of the red-team pass (issue 13), rebuilt from its description:
each now gets the right status and leaves the host unharmed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from codequant.benchmarks import load_benchmark
from codequant.limits import Limits
from codequant_executor.java_compiler import java_home
from codequant_executor.pool import ExecutorPool
from codequant_executor.sandbox import Sandbox
from tests.executor.conftest import FAST, sandbox_processes

SMALL = Limits(timeout_s=5.0, memory_mb=256)
STRLEN = load_benchmark("multiple-humaneval-java").by_name()["HumanEval_23_strlen"]
JAVA_WRONG_STRLEN = "        return 0l;\n"


def python_completion(completion: str, tests: str = "assert f(2) == 4\n") -> tuple[str, str, int]:
    """A prompt/completion job: the completion defines ``f`` (wrong unless it cheats), then the tests run."""
    head = "def f(x):\n" + completion + "\n"
    return head + tests, "python", head.count("\n") + 1


def java_completion(completion: str) -> tuple[str, str, int]:
    """A MultiPL-E job (strlen) whose completion cheats instead of answering."""
    head = STRLEN.prompt + completion + "\n"
    return head + STRLEN.tests, "java", head.count("\n") + 1


def statuses(pool: ExecutorPool, jobs: dict[str, tuple], limits: Limits = FAST) -> dict[str, str]:
    verdicts = pool.run_many(list(jobs.values()), limits)
    return {name: f"{v.status}" for name, v in zip(jobs, verdicts, strict=True)}


# --- limits: every byte a run holds counts; javac obeys the timeout -----------------------------------------


def test_memory_outside_the_heap_is_counted(pool: ExecutorPool) -> None:
    jobs = {
        # 600 MB in anonymous files under a 256 MB limit: refused (seccomp) or killed (cgroup).
        "python_memfd": (
            "import os\nfds = [os.memfd_create(f'm{i}') for i in range(10)]\n"
            "for fd in fds:\n    os.write(fd, b'x' * 60 * 1024 * 1024)\n",
            "python",
        ),
        # Shared anonymous memory (what /dev/shm and System V segments hand out) counts in the address space.
        "python_shared_mapping": ("import mmap\nm = mmap.mmap(-1, 600 << 20)\nm.write(b'x' * (600 << 20))\n", "python"),
        # Unsafe is out of reach under the security manager; direct buffers stop at MaxDirectMemorySize.
        "java_unsafe": (
            "class P { public static void main(String[] a) throws Exception {\n"
            ' java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");\n'
            " f.setAccessible(true); sun.misc.Unsafe u = (sun.misc.Unsafe) f.get(null);\n"
            " for (int i = 0; i < 12; i++) {\n"
            "  long p = u.allocateMemory(100L << 20); u.setMemory(p, 100L << 20, (byte) 1); }\n"
            "} }",
            "java",
        ),
        "java_direct": (
            "import java.nio.*; import java.util.*;\nclass P { public static void main(String[] a) {\n"
            " List<ByteBuffer> k = new ArrayList<>();\n"
            " for (int i = 0; i < 12; i++) k.add(ByteBuffer.allocateDirect(100 << 20));\n"
            "} }",
            "java",
        ),
    }
    result = statuses(pool, jobs, Limits(timeout_s=10.0, memory_mb=512))
    assert result == {
        "python_memfd": "MemoryLimit",
        "python_shared_mapping": "MemoryLimit",
        "java_unsafe": "Exception",  # AccessControlException: no Unsafe, no native memory
        "java_direct": "MemoryLimit",
    }


def test_the_jvm_native_memory_is_capped_without_the_security_manager(tmp_path: Path) -> None:
    """Below the harness: a JVM that reaches Unsafe anyway stops at RLIMIT_DATA (the cgroup where available)."""
    (tmp_path / "Alloc.java").write_text(
        "class Alloc { public static void main(String[] a) throws Exception {\n"
        ' java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");\n'
        " f.setAccessible(true); sun.misc.Unsafe u = (sun.misc.Unsafe) f.get(null);\n"
        " for (int i = 0; i < 12; i++) {\n"
        "  long p = u.allocateMemory(100L << 20); u.setMemory(p, 100L << 20, (byte) 1); }\n"
        ' System.out.println("allocated 1.2 GB"); } }\n'
    )
    javac = str(java_home() / "bin" / "javac")
    subprocess.run(
        [javac, "-nowarn", "-d", str(tmp_path), str(tmp_path / "Alloc.java")], check=True, capture_output=True
    )
    tmp_path.chmod(0o755)
    sandbox = Sandbox()
    mounts = sandbox.mounts([java_home()])
    argv = [f"{mounts[0].inside}/bin/java", "-Xmx256m", "-cp", sandbox.inside_workdir(tmp_path), "Alloc"]
    outcome = sandbox.run(
        argv, workdir=tmp_path, mounts=mounts, limits=Limits(10.0, 512), slot=901, nproc=128, memory="data"
    )
    assert "allocated" not in outcome.stdout and outcome.exit_code != 0
    assert outcome.memory_exceeded or "OutOfMemoryError" in outcome.stderr or "insufficient memory" in outcome.stderr


def nested_ternaries(depth: int = 12) -> str:
    """~230 bytes that keep javac busy for minutes (generic inference of nested conditionals)."""
    expression = "1"
    for _ in range(depth):
        expression = f"f(b?{expression}:f(1))"
    body = f"boolean b=a.length>0;Object o={expression};"
    return "class D{static<T>T f(T t){return t;}public static void main(String[] a){" + body + "}}"


def test_javac_denial_of_service_times_out_and_blocks_no_one(pool: ExecutorPool) -> None:
    jobs = {"dos": (nested_ternaries(), "java")}
    jobs |= {
        f"ok{i}": (f"class P{i} {{ public static void main(String[] a) {{ assert {i} == {i}; }} }}", "java")
        for i in range(6)
    }
    start = time.monotonic()
    verdicts = dict(zip(jobs, pool.run_many(list(jobs.values()), FAST), strict=True))
    elapsed = time.monotonic() - start
    dos = verdicts["dos"]
    assert dos.status == "Timeout" and "compiling took longer" in dos.stderr, dos.stderr
    assert all(verdicts[f"ok{i}"].status == "OK" for i in range(6)), {n: v.stderr for n, v in verdicts.items()}
    assert elapsed < 60  # the server was killed at the timeout, not left compiling for minutes
    assert pool.run_one("class Q { public static void main(String[] a) { } }", "java", FAST).status == "OK"


# --- false passes: the proof that the tests ran cannot be forged from inside -------------------------------


def test_python_completions_that_exit_before_their_tests_do_not_pass(pool: ExecutorPool) -> None:
    jobs = {
        "exit_via_eval": python_completion("    return eval(\"__import__('sys').exit(0)\")"),
        "forged_traceback": python_completion(
            "    import sys, types\n    error = SystemExit(0)\n"
            "    raise error.with_traceback(types.TracebackType(None, sys._getframe(), 0, 10 ** 6))"
        ),
        "exec_far_line": python_completion(
            "    exec(compile('\\n' * 100000 + 'raise SystemExit(0)', __file__, 'exec'))"
        ),
        "exit_in_completion": python_completion("    return x\nimport sys\nsys.exit(0)"),
        "fake_unittest": python_completion(
            "    import sys\n    sys.exit(False)\nimport unittest\nunittest.main = lambda *a, **k: sys.exit(0)",
            "import unittest\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(f(2), 4)\n"
            "unittest.main()\n",
        ),
        "exit_in_unittest_test": python_completion(
            "    import sys\n    sys.exit(0)",
            "import unittest\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(f(2), 4)\n"
            "unittest.main()\n",
        ),
    }
    result = statuses(pool, jobs)
    assert result == dict.fromkeys(jobs, "Exception"), result


def test_python_cannot_read_or_write_the_proof(pool: ExecutorPool) -> None:
    """Everything the red team read the marker from: the harness's frames, /proc/self/cmdline, stdin, fds."""
    steal = (
        "    import os, sys\n"
        "    found = []\n"
        "    frame = sys._getframe()\n"
        "    while frame is not None:\n"
        "        for scope in (frame.f_locals, frame.f_globals):\n"
        "            found += [v for v in scope.values() if isinstance(v, (str, bytes)) and len(v) >= 32]\n"
        "        frame = frame.f_back\n"
        "    found.append(os.read(0, 100))\n"
        "    for fd in range(3, 64):\n"
        "        for value in found:\n"
        "            try:\n"
        "                os.write(fd, value if isinstance(value, bytes) else value.encode())\n"
        "            except (OSError, UnicodeEncodeError):\n"
        "                pass\n"
        "    os._exit(0)"
    )
    jobs = {
        "frames_fds_stdin": python_completion(steal),
        "proc_cmdline": python_completion(
            "    print(open('/proc/self/cmdline').read())\n    import os\n    os._exit(0)"
        ),
        "gc_walk": python_completion("    import gc\n    gc.get_objects()\n    import os\n    os._exit(0)"),
        "current_frames": python_completion(
            "    import sys\n    sys._current_frames()\n    import os\n    os._exit(0)"
        ),
        "trace_hook": python_completion("    import sys\n    sys.settrace(lambda *a: None)\n    return x * 2"),
        "ctypes": python_completion("    import ctypes\n    return x * 2"),
        "handmade_code": python_completion("    code = f.__code__.replace(co_name='g')\n    return x * 2"),
    }
    result = statuses(pool, jobs)
    assert result == dict.fromkeys(jobs, "Exception"), result


def test_program_and_completion_forms_never_share_a_cached_verdict(tmp_path: Path) -> None:
    from sqlalchemy import select

    from codequant.executions import store_executions
    from codequant.keys import stable_hash
    from codequant.store import Execution, Store
    from codequant_executor.api import execute_records

    head = "def f(x):\n    return x\nimport sys\nsys.exit(0)\n"
    tests = "assert f(2) == 4\n"
    bare = {"name": "bare", "language": "python", "program": head + "\n" + tests}
    form = {"name": "form", "language": "python", "prompt": "def f(x):\n", "completion": head[10:], "tests": tests}
    assert bare["program"] == form["prompt"] + form["completion"] + "\n" + form["tests"]
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    # An execution stored under the old key formula (no tests line, no version) must not be reused.
    old_key = stable_hash({"program": bare["program"], "language": "python", "limits": FAST.as_key()})[:40]
    store.insert_ignore(Execution, [{"key": old_key, "language": "python", "status": "OK", "passed": True}])
    first = execute_records([bare], FAST, workers=2, store=store)  # the bare program first, in its own call
    store_executions(store, first)  # kept as the runners keep them: the executor only reads the store
    both = execute_records([bare, form], FAST, workers=2, store=store)
    store_executions(store, both)
    assert [r["status"] for r in first + both] == ["OK", "OK", "Exception"]
    assert len({r["execution_key"] for r in both} | {old_key}) == 3
    with store.session() as session:
        assert session.scalar(select(Execution.status).where(Execution.key == both[1]["execution_key"])) == "Exception"


def test_java_completions_that_dodge_their_tests_do_not_pass(pool: ExecutorPool) -> None:
    jobs = {
        # Closes the class and opens another that inherits the function: the first main is not the tests'.
        "second_main": java_completion(
            JAVA_WRONG_STRLEN + "    }\n    public static void main(String[] a) { }\n}\nclass Zzz extends Problem {\n"
            "    static void unused() {\n"
        ),
        # A class named like the harness, printing what it is given.
        "harness_shadow": java_completion(
            JAVA_WRONG_STRLEN + "    }\n}\nclass CqHarness {\n    public static void main(String[] a) {"
            " for (String s : a) System.out.println(s); }\n}\n"
            "class Problem2 extends Problem {\n    static void unused() {\n"
        ),
        # Turns assertions off from a static initializer (Unsafe, then reflection, then the class loader).
        "asserts_off_unsafe": java_completion(
            JAVA_WRONG_STRLEN + "    }\n    static {\n        try {\n"
            '            java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");\n'
            "            f.setAccessible(true);\n"
            "            sun.misc.Unsafe u = (sun.misc.Unsafe) f.get(null);\n"
            '            java.lang.reflect.Field d = Problem.class.getDeclaredField("$assertionsDisabled");\n'
            "            u.putBoolean(u.staticFieldBase(d), u.staticFieldOffset(d), true);\n"
            "        } catch (ReflectiveOperationException e) { throw new RuntimeException(e); }\n"
            "    }\n    static void unused() {\n"
        ),
        "asserts_off_loader": java_completion(
            JAVA_WRONG_STRLEN
            + "    }\n    static {\n        Problem.class.getClassLoader().setDefaultAssertionStatus(false);\n"
            '        Problem.class.getClassLoader().setClassAssertionStatus("Problem", false);\n'
            "    }\n    static void unused() {\n"
        ),
        # Reads the marker where the red team found it (its arguments), prints it and halts.
        "process_handle": java_completion(
            "        ProcessHandle.current().info().arguments()\n"
            '            .ifPresent(a -> System.out.println(String.join("\\n", a)));\n'
            "        Runtime.getRuntime().halt(0);\n        return 0l;\n"
        ),
        "proc_self": java_completion(
            "        try { System.out.println(new String(java.nio.file.Files.readAllBytes(\n"
            '            java.nio.file.Path.of("/proc/self/cmdline")))); }\n'
            "        catch (java.io.IOException e) { }\n        System.exit(0);\n        return 0l;\n"
        ),
    }
    result = statuses(pool, jobs)
    assert result == {
        "second_main": "Failure",
        "harness_shadow": "Failure",
        "asserts_off_unsafe": "Exception",
        "asserts_off_loader": "Failure",
        "process_handle": "Exception",
        "proc_self": "Exception",
    }, result


# --- false fails: correct programs pass ---------------------------------------------------------------------

#: Correct completions of MultiPL-E Java problems that use the JDK's services (MultiPL-E ships no Java
#: solutions; every McEval Java canonical solution runs in test_correctness.py).
JAVA_SOLUTIONS = {
    "HumanEval_162_string_to_md5": (
        "        if (text.isEmpty()) return Optional.empty();\n"
        '        try { byte[] d = MessageDigest.getInstance("MD5").digest(text.getBytes());\n'
        '              return Optional.of(String.format("%032x", new BigInteger(1, d))); }\n'
        "        catch (NoSuchAlgorithmException e) { throw new RuntimeException(e); }\n"
    ),
    "HumanEval_8_sum_product": (
        "        long sum = numbers.stream().mapToLong(Long::longValue).sum();\n"
        "        long product = numbers.stream().reduce(1L, (a, b) -> a * b);\n"
        "        return Pair.with(sum, product);\n"
    ),
    "HumanEval_29_filter_by_prefix": (
        "        return strings.stream().filter(s -> s.startsWith(prefix))\n"
        "            .collect(Collectors.toCollection(ArrayList::new));\n"
    ),
    "HumanEval_11_string_xor": (
        "        StringBuilder out = new StringBuilder();\n"
        "        for (int i = 0; i < a.length(); i++) out.append(a.charAt(i) == b.charAt(i) ? '0' : '1');\n"
        "        return out.toString();\n"
    ),
    "HumanEval_156_int_to_mini_roman": (
        '        String[] symbols = {"m", "cm", "d", "cd", "c", "xc", "l", "xl", "x", "ix", "v", "iv", "i"};\n'
        "        int[] values = {1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1};\n"
        "        StringBuilder out = new StringBuilder();\n"
        "        for (int i = 0; i < values.length; i++)\n"
        "            while (number >= values[i]) { out.append(symbols[i]); number -= values[i]; }\n"
        "        return out.toString();\n"
    ),
}


def test_correct_programs_pass(pool: ExecutorPool) -> None:
    problems = load_benchmark("multiple-humaneval-java").by_name()
    jobs: dict[str, tuple] = {}
    for name, completion in JAVA_SOLUTIONS.items():
        head = problems[name].prompt + completion + "\n"
        jobs[name] = (head + problems[name].tests, "java", head.count("\n") + 1)
    just_under = FAST.max_output_bytes - 10  # the harness's proof no longer shares stdout with the program
    jobs |= {
        "python_output_just_under_cap": python_completion(f"    return x * 2\nprint('x' * {just_under - 1})"),
        "java_output_just_under_cap": (
            "class P { public static void main(String[] a) {"
            f' System.out.println("x".repeat({just_under - 1})); }} }}',
            "java",
        ),
        "java_class_named_like_the_harness": (
            "class CqHarness { public static void main(String[] a) { assert a.length == 0; System.out.println(1); } }",
            "java",
        ),
        # Line ends other than "\n" in the completion do not move where the tests start.
        "python_carriage_returns_and_form_feeds": python_completion("    y = x * 2\r\n\x0c\r\n    return y\r"),
        "python_unittest_main": python_completion(
            "    return x * 2",
            "import unittest\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(f(2), 4)\n"
            "if __name__ == '__main__':\n    unittest.main()\n",
        ),
    }
    result = statuses(pool, jobs, Limits(timeout_s=10.0, memory_mb=512))
    assert result == dict.fromkeys(jobs, "OK"), result


def test_compile_errors_are_syntax_errors(pool: ExecutorPool) -> None:
    jobs = {
        "java_300_char_class_name": ("class " + "A" * 300 + " { public static void main(String[] a) { } }", "java"),
        "python_nul_byte": ("x = 1\x00\nprint(x)\n", "python"),
        "python_deep_nesting": ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "python"),
        "java_deep_nesting": ("class P { Object o = " + "(" * 20_000 + "1" + ")" * 20_000 + "; }", "java"),
    }
    assert statuses(pool, jobs) == dict.fromkeys(jobs, "SyntaxError")


def test_the_host_is_unharmed(pool: ExecutorPool) -> None:
    assert sandbox_processes(pool) == []
