"""C++ (g++) and JavaScript (Node.js) in the sandbox: MultiPL-E-form programs pass or fail as they should, an early
exit before the tests does not pass, and the sandbox's layers hold for both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codequant.benchmarks import Problem, load_benchmark
from codequant.limits import Limits
from codequant_executor.outcome import EARLY_EXIT
from codequant_executor.pool import ExecutorPool
from tests.executor.conftest import FAST

DATA = Path(__file__).resolve().parents[1] / "data" / "benchmarks"
#: Reference completions of the problems in tests/data/benchmarks (MultiPL-E ships none).
CPP = {
    "HumanEval_23_strlen": "    return string.size();\n",
    "HumanEval_85_add": "    long s = 0;\n    for (size_t i = 1; i < lst.size(); i += 2)\n"
    "        if (lst[i] % 2 == 0) s += lst[i];\n    return s;\n",
    "HumanEval_63_fibfib": "    if (n < 2) return 0;\n    if (n == 2) return 1;\n"
    "    return fibfib(n - 1) + fibfib(n - 2) + fibfib(n - 3);\n",
}
JS = {
    "HumanEval_23_strlen": "  return string.length;\n}\n",
    "HumanEval_85_add": "  let s = 0;\n  for (let i = 1; i < lst.length; i += 2) if (lst[i] % 2 == 0) s += lst[i];\n"
    "  return s;\n}\n",
    "HumanEval_17_parse_music": "  const beats = {'o': 4, 'o|': 2, '.|': 1};\n"
    "  return music_string.split(' ').filter(x => x).map(x => beats[x]);\n}\n",
}


def job(problem: Problem, completion: str) -> tuple[str, str, int]:
    """A program in prompt/completion form, with where its tests start (as the executor's API computes it)."""
    return problem.program(completion), problem.language, (problem.prompt + completion + "\n").count("\n") + 1


def run(pool: ExecutorPool, jobs: dict[str, tuple], limits: Limits = FAST) -> dict[str, tuple[str, str]]:
    verdicts = pool.run_many(list(jobs.values()), limits)
    return {name: (str(v.status), v.stdout + v.stderr) for name, v in zip(jobs, verdicts, strict=True)}


@pytest.mark.parametrize(("benchmark", "solutions"), [("multiple-humaneval-cpp", CPP), ("multiple-humaneval-js", JS)])
def test_reference_completions_pass_and_wrong_ones_fail(pool: ExecutorPool, benchmark: str, solutions: dict) -> None:
    problems = load_benchmark(benchmark, data_dir=DATA).by_name()
    strlen = problems["HumanEval_23_strlen"]
    wrong = "    return 1;\n" if strlen.language == "cpp" else "  return 1;\n}\n"
    broken = "    return string.size()\n" if strlen.language == "cpp" else "  return string.length;;)\n}\n"
    jobs = {name: job(problems[name], completion) for name, completion in solutions.items()}
    jobs |= {"wrong": job(strlen, wrong), "broken": job(strlen, broken)}
    result = run(pool, jobs)
    assert {n: s for n, (s, _) in result.items()} == {
        **dict.fromkeys(solutions, "OK"),
        "wrong": "Failure",
        "broken": "SyntaxError",
    }, result


def test_cpp_completions_that_leave_before_their_tests_do_not_pass(pool: ExecutorPool) -> None:
    strlen = load_benchmark("multiple-humaneval-cpp", data_dir=DATA).by_name()["HumanEval_23_strlen"]
    leave = {
        "exit": "    exit(0);\n",
        "std_exit": "    std::exit(0);\n",
        "_exit": "    _exit(0);\n",
        "quick_exit": "    std::quick_exit(0);\n",
        "static_init": "    return string.size();\n}\nstatic int leave = (exit(0), 0);\nvoid unused() {\n",
    }
    jobs = {name: job(strlen, completion) for name, completion in leave.items()}
    jobs |= {
        "bare_ok": ("int main() { return 0; }\n", "cpp", 0),
        "bare_exit_3": ("#include <cstdlib>\nint main() { std::exit(3); }\n", "cpp", 0),
        "main_returns_1": (strlen.prompt + "    return 0;\n}\nint main() { return 1; }\n", "cpp", 0),
    }
    result = run(pool, jobs)
    for name in leave:
        assert result[name] == ("Exception", EARLY_EXIT), name
    assert result["bare_ok"][0] == "OK"
    assert result["bare_exit_3"][0] == "Exception" and result["main_returns_1"][0] == "Exception"


def test_js_completions_that_leave_before_their_tests_do_not_pass(pool: ExecutorPool) -> None:
    strlen = load_benchmark("multiple-humaneval-js", data_dir=DATA).by_name()["HumanEval_23_strlen"]
    leave = {
        "exit": "  process.exit(0);\n}\n",
        "exit_at_load": "  return string.length;\n}\nprocess.exit(0);\n",
        "really_exit": "  return string.length;\n}\nprocess.reallyExit(0);\n",
        "throw_caught_by_exit_handler": "  return 1;\n}\nprocess.on('uncaughtException', () => process.exit(0));\n",
    }
    jobs = {name: job(strlen, completion) for name, completion in leave.items()}
    jobs["bare_ok"] = ("console.log('hi');\n", "javascript", 0)
    result = run(pool, jobs)
    for name in leave:
        assert result[name][0] == "Exception" and result[name][1].endswith(EARLY_EXIT), (name, result[name])
    assert result["bare_ok"] == ("OK", "hi\n")


CPP_HOSTILE = {
    # (program, expected status, text expected in stdout+stderr)
    "host_file_at_compile_time": ('#include "/etc/passwd"\nint main() {}\n', "SyntaxError", "No such file"),
    "endless": ("int main() { for (;;) {} }\n", "Timeout", ""),
    "huge_allocation": (
        "#include <vector>\nint main() { std::vector<char> v(8000000000ULL); return v[1]; }\n",
        "MemoryLimit",
        "bad_alloc",
    ),
    "segfault": ("int main() { volatile int *p = nullptr; return *p; }\n", "Exception", ""),
    "own_uid_no_network": (
        "#include <cassert>\n#include <unistd.h>\n#include <arpa/inet.h>\n#include <sys/socket.h>\n"
        "int main() {\n    assert(getuid() >= 62000);\n    int s = socket(AF_INET, SOCK_STREAM, 0);\n"
        "    sockaddr_in a{};\n    a.sin_family = AF_INET;\n    a.sin_port = htons(6379);\n"
        "    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);\n"
        "    assert(connect(s, (sockaddr *)&a, sizeof a) != 0);  // Redis listens there outside the sandbox\n}\n",
        "OK",
        "",
    ),
}
JS_HOSTILE = {
    "endless": ("for (;;) {}\n", "Timeout", ""),
    "heap": ("const a = [];\nfor (;;) a.push(new Array(1e6).fill(1.5));\n", "MemoryLimit", ""),
    "buffers": ("const a = [];\nfor (;;) a.push(Buffer.alloc(64 * 1024 * 1024, 1));\n", "MemoryLimit", ""),
    "host_file": ("require('node:fs').readFileSync('/etc/passwd');\n", "Exception", "ENOENT"),
    "no_proc": ("require('node:fs').readFileSync('/proc/self/status');\n", "Exception", "ENOENT"),
    "no_network": (
        "const s = require('node:net').connect(6379, '127.0.0.1');\n"
        "s.on('connect', () => { console.log('connected'); process.exitCode = 1; });\n"
        "s.on('error', (e) => console.log('blocked ' + e.code));\n",
        "OK",
        "blocked ECONNREFUSED",
    ),
    "child_process": (
        "console.log(require('node:child_process').execSync('id -u').toString().trim() >= 62000);\n",
        "OK",
        "true",
    ),
}


@pytest.mark.parametrize(("language", "programs"), [("cpp", CPP_HOSTILE), ("javascript", JS_HOSTILE)])
def test_hostile_programs_are_contained(pool: ExecutorPool, language: str, programs: dict) -> None:
    # A small heap fills fast; the time limit leaves room for a loaded machine.
    limits = Limits(timeout_s=10.0, memory_mb=256)
    result = run(pool, {name: (program, language, 0) for name, (program, _, _) in programs.items()}, limits)
    for name, (_, status, text) in programs.items():
        assert result[name][0] == status and text in result[name][1], (name, result[name])


def test_execute_accepts_cpp_and_javascript_records(tmp_path: Path) -> None:
    from codequant_executor.api import execute_records

    problem = load_benchmark("multiple-humaneval-js", data_dir=DATA).by_name()["HumanEval_23_strlen"]
    record = {**problem.to_record(), "completion": JS["HumanEval_23_strlen"]}
    multiple = {**record, "language": "js"}  # MultiPL-E's name for it
    ours, theirs = execute_records([json.loads(json.dumps(record)), multiple], FAST)
    assert ours["status"] == theirs["status"] == "OK" and ours["execution_key"] == theirs["execution_key"]


@pytest.mark.parametrize("benchmark", ["humaneval-plus", "mbpp-plus", "mbpp"])
def test_python_benchmark_references_pass(pool: ExecutorPool, benchmark: str) -> None:
    problems = load_benchmark(benchmark, data_dir=DATA).problems
    result = run(pool, {p.name: job(p, p.canonical_solution or "") for p in problems})
    assert {n: r for n, r in result.items() if r[0] != "OK"} == {}


def test_evalplus_tests_catch_what_the_base_tests_miss(pool: ExecutorPool) -> None:
    """A completion with ``<=`` for ``<`` passes HumanEval/0's base tests and fails HumanEval+'s extra inputs."""
    base = load_benchmark("humaneval", problems=["HumanEval_0_has_close_elements"]).problems[0]
    plus = load_benchmark("humaneval-plus", data_dir=DATA).problems[0]
    almost = (
        "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n"
        "            if i != j and abs(a - b) <= threshold:\n                return True\n    return False\n"
    )
    result = run(pool, {"base": job(base, almost), "plus": job(plus, almost)})
    assert result["base"][0] == "OK" and result["plus"][0] == "Failure"


def test_the_evalplus_release_file_runs_with_the_reference_as_oracle(pool: ExecutorPool) -> None:
    """HumanEval+ as EvalPlus releases it: expected outputs come from the reference; find_zero takes any root."""
    problems = load_benchmark("humaneval-plus", data_dir=DATA / "evalplus-release").by_name()
    close, truncate, zero = (
        problems[f"HumanEvalPlus_{n}"] for n in ("0_has_close_elements", "2_truncate_number", "32_find_zero")
    )
    almost = (
        "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n"
        "            if i != j and abs(a - b) <= threshold:\n                return True\n    return False\n"
    )
    # Newton's method from another start: a different root of the same polynomials, within atol.
    newton = (
        "    x = 1.5\n    for _ in range(200):\n"
        "        d = sum(i * c * x ** (i - 1) for i, c in enumerate(xs) if i)\n"
        "        x = x - poly(xs, x) / d if d else x + 0.1\n    return x\n"
    )
    jobs = {p.name: job(p, p.canonical_solution or "") for p in (close, truncate, zero)}
    jobs |= {
        "almost": job(close, almost),
        "rounded": job(truncate, "    return round(number % 1.0, 2)\n"),
        "newton": job(zero, newton),
        "not_a_zero": job(zero, "    return 0.5\n"),
    }
    result = {n: s for n, (s, _) in run(pool, jobs).items()}
    assert result == {
        **dict.fromkeys((close.name, truncate.name, zero.name), "OK"),
        "almost": "Failure",
        "rounded": "Failure",
        "newton": "OK",
        "not_a_zero": "Failure",
    }
