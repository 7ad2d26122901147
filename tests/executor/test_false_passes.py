"""False passes, by class: a wrong program must never be OK, however it ends or rewrites what runs it.

C++: the proof means "the tests' main returned" (the harness owns main and calls the tests' main, renamed for
the run), so no way of exiting 0 without that passes; bare programs compile as plain g++ compiles them."""

from __future__ import annotations

from pathlib import Path

import pytest

from codequant.benchmarks import load_benchmark
from codequant.limits import Limits
from codequant_executor.cpp_runner import precompiled_header_fits, rename_tests_main
from codequant_executor.outcome import EARLY_EXIT
from codequant_executor.pool import ExecutorPool
from codequant_executor.status import Status

DATA = Path(__file__).resolve().parents[1] / "data" / "benchmarks"
LIMITS = Limits(timeout_s=20.0, memory_mb=512)


def cpp_job(completion: str) -> tuple[str, str, int]:
    """The strlen problem (tests: candidate("") == 0, "x" == 1, "asdasnakj" == 9) with ``completion``."""
    problem = load_benchmark("multiple-humaneval-cpp", data_dir=DATA).by_name()["HumanEval_23_strlen"]
    return problem.program(completion), "cpp", (problem.prompt + completion + "\n").count("\n") + 1


WRONG = "    return 1;\n"  # then one of these: each ends the process with status 0 before or instead of the tests
CPP_ESCAPES = {
    "exit": "    exit(0);\n",
    "quick_exit": "    quick_exit(0);\n",
    "_Exit": "    _Exit(0);\n",
    "pthread_exit from main's thread": "    pthread_exit(nullptr);\n",
    "errx (glibc's own exit)": '    errx(0, "bye");\n',
    "err": '    err(0, "bye");\n',
    "exit through dlsym": '    ((void (*)(int))dlsym(RTLD_DEFAULT, "exit"))(0);\n',
    "exit's real name": '    extern "C" void __real_exit(int); __real_exit(0);\n',
}
HEADERS = "#include <err.h>\n#include <dlfcn.h>\n#include <pthread.h>\n#include <csignal>\n#include <unistd.h>\n"


@pytest.mark.slow
def test_cpp_no_exit_with_status_0_passes_unless_the_tests_main_returned(pool: ExecutorPool) -> None:
    # The escape runs in a function defined after the headers it needs, called by the completion.
    call = "    long escape(std::string);\n    return escape(string);\n}\n" + HEADERS + "long escape(std::string) {\n"
    jobs = {name: cpp_job(call + escape + WRONG) for name, escape in CPP_ESCAPES.items()}
    # A failed assert (SIGABRT) whose handler exits 0; a main of the completion's own; #define main; a
    # definition of the harness's entry symbol.
    jobs["SIGABRT handler exits 0"] = cpp_job(
        WRONG + "}\n#include <csignal>\n#include <cstdlib>\n"
        "static int installed = (std::signal(SIGABRT, [](int) { std::_Exit(0); }), 0);\nlong unused() {\n" + WRONG
    )
    jobs["its own main"] = cpp_job(WRONG + "}\nint main() { return 0; }\nlong unused() {\n" + WRONG)
    jobs["#define main"] = cpp_job(
        WRONG + "}\nint fake() { return 0; }\n#define main fake_unused\nlong unused() {\n" + WRONG
    )
    jobs["defines the entry"] = cpp_job(
        WRONG + '}\nextern "C" int __cq_tests_entry(int, char **, char **) { return 0; }\nlong unused() {\n' + WRONG
    )
    jobs["correct"] = cpp_job("    return string.size();\n")
    verdicts = dict(zip(jobs, pool.run_many(list(jobs.values()), LIMITS), strict=True))
    passed = [name for name, verdict in verdicts.items() if verdict.passed]
    assert passed == ["correct"], {name: (v.status, v.stderr[-200:]) for name, v in verdicts.items()}
    assert verdicts["its own main"].status is Status.SYNTAX_ERROR  # two mains do not link
    for name in [*CPP_ESCAPES, "SIGABRT handler exits 0"]:  # each reached its exit with status 0, unproven
        if name != "exit's real name":  # (no longer a symbol at all: it does not link)
            assert verdicts[name].exit_code == 0 and verdicts[name].stderr.endswith(EARLY_EXIT), (name, verdicts[name])


def test_the_tests_main_is_renamed_on_its_own_line() -> None:
    program = "int f() {\n  return 1;\n}\nint main() {\n  return f() - 1;\n}\n"
    renamed = rename_tests_main(program, 4, "__cq_tests_main_x")
    assert renamed is not None and renamed.split("\n")[3] == 'extern "C" int __cq_tests_main_x() {'
    assert renamed.split("\n")[5] == "return 0;}"  # main alone returns 0 when it ends without a return
    assert renamed.count("\n") == program.count("\n")
    # A main in the completion is not the tests' (it stays, and then does not link beside the harness's).
    assert rename_tests_main("int main() {}\n" + program, 5, "e").startswith("int main() {}\n")
    assert rename_tests_main("int f();\nvoid g() {}\n", 2, "e") is None
    assert rename_tests_main("int f();\nint main() { return 0; }\nint x;\n", 2, "e") is None  # not main's end


@pytest.mark.parametrize(
    ("program", "fits"),
    [
        ("#include<assert.h>\n#include<bits/stdc++.h>\n// Return length\nlong f() {", True),  # MultiPL-E's
        ("// a comment\n/* and\n another */\n#include <bits/stdc++.h>\nint main() {}", True),
        ("#define _GLIBCXX_DEBUG\n#include <bits/stdc++.h>\nint main() {}", False),
        ("#define vector list\n#include <bits/stdc++.h>\nint main() {}", False),
        ("/*\n#include <bits/stdc++.h>\n*/\nint main() {}", False),
        ('#include "mine.h"\n#include <bits/stdc++.h>\n', False),
        ("int x;\n#include <bits/stdc++.h>\n", False),
        ("#include <vector>\nint main() {}", False),
    ],
)
def test_the_precompiled_header_is_used_only_where_it_changes_nothing(program: str, fits: bool) -> None:
    assert precompiled_header_fits(program) is fits


@pytest.mark.slow
def test_bare_cpp_programs_compile_as_plain_gxx_compiles_them(pool: ExecutorPool) -> None:
    """The header named only in a comment is not included; the program's own macros before it (debug mode)
    apply to it: the out-of-range access aborts as with plain g++."""
    commented = '/*\n#include <bits/stdc++.h>\n*/\nint main() { std::puts("x"); }\n'
    debug = "#define _GLIBCXX_DEBUG\n#include <bits/stdc++.h>\nint main() { std::vector<int> v(1); return v[5]; }\n"
    plain = "#include <bits/stdc++.h>\nint main() { std::vector<int> v(1); std::cout << v.size(); }\n"
    verdicts = pool.run_many([(commented, "cpp"), (debug, "cpp"), (plain, "cpp")], LIMITS)
    assert verdicts[0].status is Status.SYNTAX_ERROR, verdicts[0]
    assert verdicts[1].exit_code == -6 and "debug/vector" in verdicts[1].stderr, verdicts[1]  # debug mode
    assert verdicts[2].status is Status.OK and verdicts[2].stdout == "1"


def js_job(completion: str) -> tuple[str, str, int]:
    """The JavaScript strlen problem with ``completion`` (its tests: candidate("") === 0, "x" 1, ...)."""
    problem = load_benchmark("multiple-humaneval-js", data_dir=DATA).by_name()["HumanEval_23_strlen"]
    return problem.program(completion), "javascript", (problem.prompt + completion + "\n").count("\n") + 1


JS_WRONG = "  return 1;\n}\n"
JS_FORGERIES = {
    "through arguments": "const cb = arguments[arguments.length - 1]; if (typeof cb === 'function') cb();\n",
    "eval of the name read from its own wrapper": (
        "const name = arguments.callee.toString().match(/__cq_done_[0-9a-f]+/)[0];\neval(name + '()');\n"
    ),
    "new Function": "new Function('(' + arguments.callee.toString() + ')')();\n",
    "its wrapper called again with a fake assert": (
        "if (!globalThis.again) { globalThis.again = true;\n"
        "  const fake = () => new Proxy(function () {}, { get: () => () => {}, apply: () => {} });\n"
        "  arguments.callee.call(exports, exports, fake, module, __filename, __dirname); process.exit(0); }\n"
    ),
    "forged call sites": (
        "const name = arguments.callee.toString().match(/__cq_done_[0-9a-f]+/)[0];\n"
        "Error.prepareStackTrace = (e, s) => s; const proto = Object.getPrototypeOf(new Error().stack[0]);\n"
        "Error.prepareStackTrace = undefined;\n"
        "const lines = require('fs').readFileSync(__filename, 'utf8').split('\\n').length + 1;\n"
        "proto.getLineNumber = () => lines; proto.isEval = () => false; proto.getFileName = () => __filename;\n"
        "proto.getFunctionName = () => 'main';\n"
        "Object.defineProperty(Error, 'prepareStackTrace', { get: () => (e, s) => s, set() {} });\n"
        "eval(name + '()');\n"
    ),
    "patched stack capture and array methods": (
        "const name = arguments.callee.toString().match(/__cq_done_[0-9a-f]+/)[0];\n"
        "const lines = require('fs').readFileSync(__filename, 'utf8').split('\\n').length + 1;\n"
        "const site = (file, line, fn) => ({ getFileName: () => file, getLineNumber: () => line,\n"
        "  isEval: () => false, getFunctionName: () => fn });\n"
        "const forged = [site(__filename, lines, ''), site(__filename, lines, ''), site('x', 1, 'main')];\n"
        "Error.captureStackTrace = (holder) => { holder.stack = forged; };\n"
        "Array.prototype.slice = function () { return [forged[0], { getFileName: () => process.argv[1],\n"
        "  getLineNumber: () => 1, isEval: () => false, getFunctionName: () => 'main' }]; };\n"
        "Array.isArray = () => true;\n"
        "eval(name + '()');\n"
    ),
}


@pytest.mark.slow
def test_javascript_completion_proof_cannot_be_forged(pool: ExecutorPool) -> None:
    """Each forgery then exits 0 before the (failing) tests: none passes. The program is the main module
    (require.main === module, as under plain node), with or without 'use strict'."""
    jobs = {name: js_job(JS_WRONG + forgery + "process.exit(0);\n") for name, forgery in JS_FORGERIES.items()}
    jobs["correct"] = js_job("  return string.length;\n}\nif (require.main !== module) process.exit(1);\n")
    strict = load_benchmark("multiple-humaneval-js", data_dir=DATA).by_name()["HumanEval_23_strlen"]
    program = "'use strict';\n" + strict.program("  return string.length;\n}\n")
    jobs["correct, strict"] = (
        program,
        "javascript",
        (strict.prompt + "  return string.length;\n}\n\n").count("\n") + 2,
    )
    verdicts = dict(zip(jobs, pool.run_many(list(jobs.values()), LIMITS), strict=True))
    passed = sorted(name for name, verdict in verdicts.items() if verdict.passed)
    assert passed == ["correct", "correct, strict"], {n: (v.status, v.stderr[-300:]) for n, v in verdicts.items()}
    for name in JS_FORGERIES:  # each forgery ran to its exit(0), which came without the proof
        assert verdicts[name].exit_code == 0 and verdicts[name].stderr.endswith(EARLY_EXIT), (name, verdicts[name])


# Python: the completion's forgeries. Each runs in the wrong completion, and ends with os._exit(0): it passes only
# if the forgery made the harness write the proof.
PY_PROMPT = "def square(x):\n"
PY_TESTS = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9\n\ncheck(square)\n"
PY_WRONG = "    return 0\n"
EVERYTHING = (
    "class Equal:\n    def __eq__(self, other):\n        return True\n"
    "fake = {'__builtins__': __builtins__, 'square': lambda x: Equal()}\n"
)
PY_FORGERIES = {
    "the tests' code from the runner's frame": (
        "import sys, os\n" + EVERYTHING + "frame = sys._getframe(0)\n"
        "while frame is not None:\n"
        "    for value in list(frame.f_locals.values()):\n"
        "        if type(value) is type(frame.f_code) and 'check' in value.co_names:\n"
        "            exec(value, fake)\n            os._exit(0)\n"
        "    frame = frame.f_back\n"
    ),
    "the tests' code run again from inside the candidate": (
        "import sys, os\n" + EVERYTHING + "def square(x):\n"
        "    frame = sys._getframe(1)\n"
        "    while frame.f_back is not None and 'check' not in frame.f_code.co_names:\n"
        "        frame = frame.f_back\n"
        "    exec(frame.f_code, fake)\n    os._exit(0)\n"
    ),
    "the tests' code run again from a thread": (
        "import sys, os, threading\n" + EVERYTHING + "def square(x):\n"
        "    frame = sys._getframe(1)\n"
        "    while 'check' not in frame.f_code.co_names:\n"
        "        frame = frame.f_back\n"
        "    thread = threading.Thread(target=exec, args=(frame.f_code, fake))\n"
        "    thread.start()\n    thread.join()\n    os._exit(0)\n"
    ),
    "the runner called again": (
        "import sys, os, _thread\n" + EVERYTHING + "def square(x):\n"
        "    frame = sys._getframe(1)\n"
        "    while 'check' not in frame.f_code.co_names:\n"
        "        frame = frame.f_back\n"
        "    runner = frame.f_back.f_globals['runner']\n"
        "    lock = _thread.allocate_lock()\n    lock.acquire()\n"
        "    try:\n        runner(None, frame.f_code, fake, [], lock)\n"
        "    except TypeError:\n        runner(None, fake, [], lock)\n"
        "    os._exit(0)\n"
    ),
    "the deny-lists emptied through the runner's globals": (
        "import sys, os, gc\n"
        "harness = sys._getframe(1).f_globals\n"
        "for name in list(harness):\n"
        "    if name.startswith('FORBIDDEN'):\n        harness[name] = frozenset()\n"
        "harness['type'] = lambda value: None\n"
        "for thing in gc.get_objects():\n"
        "    if callable(thing) and getattr(thing, '__closure__', None):\n"
        "        cells = [c.cell_contents for c in thing.__closure__ if c.cell_contents is not None]\n"
        "        secret = [c for c in cells if type(c) is bytes and c.endswith(b'\\n')]\n"
        "        fds = [c for c in cells if type(c) is int and c > 2]\n"
        "        if secret and fds:\n            os.write(fds[0], secret[0])\n"
        "os._exit(0)\n"
    ),
    "a tracer jumping the genuine tests to their end": (
        "import sys, os\n"
        "harness = sys._getframe(1).f_globals\n"
        "for name in list(harness):\n"
        "    if name.startswith('FORBIDDEN'):\n        harness[name] = frozenset()\n"
        "def tracer(frame, event, arg):\n"
        "    if 'check' in frame.f_code.co_names and event == 'line':\n"
        "        last = max(l for _, _, l in frame.f_code.co_lines() if l)\n"
        "        try:\n            frame.f_lineno = last\n        except ValueError:\n            pass\n"
        "    return tracer\n"
        "sys.settrace(tracer)\n"
    ),
}


def py_job(completion: str) -> tuple[str, str, int]:
    head = PY_PROMPT + completion + "\n"
    return head + PY_TESTS, "python", head.count("\n") + 1


@pytest.mark.slow
def test_python_proof_cannot_be_forged_from_inside_the_program(pool: ExecutorPool) -> None:
    """Reaching the tests' code (from any frame, a thread, the runner called again), the harness's globals
    (deny-lists, builtins) or a tracer: none writes the proof; completion counts once, from the genuine tests'
    frame called by the genuine runner frame."""
    jobs = {name: py_job(PY_WRONG + forgery) for name, forgery in PY_FORGERIES.items()}
    jobs["correct"] = py_job("    return x * x\n")
    jobs["correct, binding __import__ and sys"] = py_job("    return x * x\n__import__ = None\nsys = None\n")
    verdicts = dict(zip(jobs, pool.run_many(list(jobs.values()), LIMITS), strict=True))
    passed = sorted(name for name, verdict in verdicts.items() if verdict.passed)
    assert passed == ["correct", "correct, binding __import__ and sys"], {
        n: (v.status, v.exit_code, v.stderr[-300:]) for n, v in verdicts.items()
    }


def test_a_bare_javascript_program_may_start_with_a_shebang(pool: ExecutorPool) -> None:
    """Node ignores a first line starting with #! in a file it runs; so does the harness."""
    verdict = pool.run_one("#!/usr/bin/env node\nconsole.log('hi');\n", "javascript", LIMITS)
    assert verdict.status is Status.OK and verdict.stdout == "hi\n", verdict


EXECUTOR_SERVICE = """import java.util.concurrent.*;
class Main {
    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        Future<Integer> answer = pool.submit(() -> 6 * 7);
        assert answer.get() == 42;
        pool.shutdown();
        assert pool.awaitTermination(5, TimeUnit.SECONDS);
        ForkJoinPool.commonPool().submit(() -> 1).get();
        System.out.println("done");
    }
}
"""


@pytest.mark.slow
def test_a_java_program_may_shut_down_its_thread_pools(pool: ExecutorPool) -> None:
    """ExecutorService.shutdown() needs modifyThread; without it the pool's threads kept the JVM alive."""
    verdict = pool.run_one(EXECUTOR_SERVICE, "java", LIMITS)
    assert verdict.status is Status.OK and verdict.stdout == "done\n", verdict


@pytest.mark.slow
def test_a_python_completion_may_end_with_decorators_of_the_tests_first_definition(pool: ExecutorPool) -> None:
    """As in the whole program, a completion's last decorator lines apply to the tests' first definition
    (they are compiled with the tests); a decorator that could open a string or bracket over the tests stays
    a SyntaxError, so the tests can never be swallowed."""
    decorated = py_job("    return x * x\n\nimport functools\n@functools.lru_cache  # cached\n\n@staticmethod\n")
    swallowing = py_job('    return 0\n@print("""\n')
    unclosed = py_job("    return 0\n@print(\n")
    verdicts = pool.run_many([decorated, swallowing, unclosed], LIMITS)
    assert verdicts[0].status is Status.OK, verdicts[0]
    assert [v.status for v in verdicts[1:]] == [Status.SYNTAX_ERROR] * 2, verdicts
