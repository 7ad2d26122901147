"""Benchmark loaders: counts, repairs, the paper's filter, record shape and bad input."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from codequant.benchmarks import BENCHMARKS, BenchmarkInfo, benchmark_info, load_benchmark
from codequant.errors import InputError
from codequant.study.spec import BenchmarkSpec
from tests.cli import codequant

COUNTS = {
    "humaneval": (164, 0, 0),
    "multiple-humaneval-py": (161, 0, 0),
    "multiple-humaneval-java": (158, 0, 0),
    "mceval-python": (50, 0, 1),
    "mceval-java": (52, 1, 1),
}


@pytest.mark.parametrize("name", list(COUNTS))
def test_every_shipped_benchmark_loads_with_its_counts(name: str, data_dir: Path) -> None:
    loaded = load_benchmark(name, data_dir=data_dir)
    assert (len(loaded.problems), len(loaded.excluded), len(loaded.repaired)) == COUNTS[name]
    assert len(loaded.problems) + len(loaded.excluded) == BENCHMARKS[name].expected_count
    names = [p.name for p in loaded.problems]
    assert len(set(names)) == len(names)
    for problem in loaded.problems:
        record = problem.to_record()
        assert {"name", "language", "prompt", "tests", "stop_tokens", "benchmark"} <= record.keys()
        assert record["language"] == BENCHMARKS[name].language and record["benchmark"] == name
        assert 1 <= len(problem.stop_tokens) <= 4  # TGI's default max_stop_sequences
    assert "sha256:" in loaded.provenance or name == "humaneval"


def test_defective_mceval_items_are_listed(data_dir: Path) -> None:
    java = load_benchmark("mceval-java")
    assert list(java.excluded) == ["McEval_Java_2_findNthLeapYear"]
    assert "McEval_Java_2_findNthLeapYear" not in java.by_name()
    # The stated reason is the conflict in the data: the docstring's example and the test expect different years.
    raw = next(r for r in map(json.loads, (data_dir / "mceval-java.jsonl").open()) if r["task_id"] == "Java/2")
    assert "findNthLeapYear(2000, 4) => 2008" in raw["prompt"] and "findNthLeapYear(2000, 4) == 2012" in raw["test"]
    reason = java.excluded["McEval_Java_2_findNthLeapYear"]
    assert "contradicts" in reason and "2008" in reason and "2012" in reason
    reverse = java.by_name()["McEval_Java_53_reverseWords"]
    assert "testReverseWords" in reverse.tests and "testReverseWords" not in (reverse.canonical_solution or "")
    python = load_benchmark("mceval-python")
    assert (
        python.by_name()["McEval_Python_9_find_number_combinations"]
        .tests.rstrip()
        .endswith("test_find_number_combinations()")
    )


def test_paper_filter_leaves_42_mceval_python_problems(data_dir: Path) -> None:
    loaded = load_benchmark("mceval-python", data_dir=data_dir, exclude_humaneval_overlap=True)
    assert len(loaded.problems) == 42
    assert collections.Counter(p.level for p in loaded.problems) == {"easy": 23, "middle": 10, "hard": 9}
    assert len(loaded.excluded) == 8
    assert loaded.excluded["McEval_Python_1_has_close_elements"] == "duplicates HumanEval/0"
    with pytest.raises(InputError, match="mceval-python only"):
        load_benchmark("mceval-java", exclude_humaneval_overlap=True)


def test_java_stop_token_follows_the_method_indentation() -> None:
    problems = load_benchmark("mceval-java").by_name()
    two_space = problems["McEval_Java_53_reverseWords"]
    assert two_space.stop_tokens == ["\n  }\n"] and two_space.prompt.endswith("reverseWords(String s) {\n")
    assert load_benchmark("multiple-humaneval-java").problems[0].stop_tokens == ["\n    }\n"]


def test_mceval_python_programs_equal_mcevals_reference_composition(data_dir: Path) -> None:
    rows = {r["task_id"]: r for r in map(json.loads, (data_dir / "mceval-python.jsonl").read_text().splitlines())}
    for problem in load_benchmark("mceval-python").problems:
        if problem.source_id == "Python/9":
            continue
        row = rows[problem.source_id]
        reference = row["prompt"] + "\n" + row["canonical_solution"] + "\n\n" + row["test"]
        assert problem.program(problem.canonical_solution).rstrip("\n") == reference.rstrip("\n")


def _python_passes(program: str) -> bool:
    result = subprocess.run([sys.executable, "-I", "-c", program], capture_output=True, timeout=60)
    return result.returncode == 0


def test_canonical_python_solutions_pass_and_wrong_ones_fail() -> None:
    problems = load_benchmark("humaneval").problems + load_benchmark("mceval-python").problems
    with ThreadPoolExecutor(4) as pool:
        good = list(pool.map(lambda p: _python_passes(p.program(p.canonical_solution)), problems))
        bad = list(pool.map(lambda p: _python_passes(p.program("    return None\n")), problems[:20]))
    assert [p.name for p, ok in zip(problems, good, strict=True) if not ok] == []
    assert not any(bad)


@pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")
def test_converted_mceval_java_programs_compile_and_pass(tmp_path: Path) -> None:
    problems = load_benchmark("mceval-java").by_name()
    for name in ("McEval_Java_1_calculateAverageBalance", "McEval_Java_53_reverseWords"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "Solution.java").write_text(problems[name].program(problems[name].canonical_solution))
        subprocess.run(["javac", "-encoding", "UTF8", "Solution.java"], cwd=folder, check=True, timeout=120)
        run = subprocess.run(["java", "-ea", "Solution"], cwd=folder, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr


def test_problem_subset_and_limit() -> None:
    loaded = load_benchmark("multiple-humaneval-py", problems=["HumanEval_0_has_close_elements", "HumanEval_23_strlen"])
    assert sorted(p.name for p in loaded.problems) == ["HumanEval_0_has_close_elements", "HumanEval_23_strlen"]
    assert len(load_benchmark("mceval-java", limit=5).problems) == 5
    with pytest.raises(InputError, match="unknown problem"):
        load_benchmark("multiple-humaneval-py", problems=["HumanEval_999_nothing"])


def test_bad_benchmark_files_name_file_and_line(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(InputError, match="unknown benchmark 'nope'"):
        load_benchmark("nope")
    with pytest.raises(InputError, match=r"mceval-java\.jsonl: benchmark file not found"):
        load_benchmark("mceval-java", data_dir=tmp_path)
    lines = (data_dir / "mceval-java.jsonl").read_text().splitlines()
    (tmp_path / "mceval-java.jsonl").write_text("\n".join([lines[0], "[1, 2]", *lines[1:]]) + "\n")
    with pytest.raises(InputError, match=r"mceval-java\.jsonl:2: expected a JSON object, got list"):
        load_benchmark("mceval-java", data_dir=tmp_path)
    (tmp_path / "multiple-humaneval-py.jsonl").write_text('{"name": "x", "language": "java"}\n')
    with pytest.raises(InputError, match=r"multiple-humaneval-py\.jsonl:1: missing or non-string field\(s\) prompt"):
        load_benchmark("multiple-humaneval-py", data_dir=tmp_path)


#: A problem in the record form of MultiPL-E's MBPP in Python (config mbpp-py; MBPP task 3, reworded).
MBPP_PY = {
    "name": "mbpp_3_is_not_prime",
    "language": "py",
    "prompt": 'def is_not_prime(n: int) -> bool:\n    """Whether n is not a prime number."""\n',
    "tests": "def check(candidate):\n    assert candidate(2) == False\n    assert candidate(10) == True\n\n"
    "check(is_not_prime)\n",
    "stop_tokens": ["\ndef", "\n#", "\nif", "\nclass"],
}


def test_a_benchmark_of_a_known_kind_is_one_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = BenchmarkInfo("multiple-mbpp-py", "MultiPL-E MBPP", "python", "multiple", "mbpp-py", 1, "BSD-3-Clause")
    with pytest.raises(ValidationError, match="unknown benchmark 'multiple-mbpp-py'"):
        BenchmarkSpec(name=info.name)
    monkeypatch.setitem(BENCHMARKS, info.name, info)  # the entry registry.py would get
    (tmp_path / f"{info.name}.jsonl").write_text(json.dumps(MBPP_PY) + "\n")  # and its data file
    assert BenchmarkSpec(name=info.name).name == info.name and benchmark_info(info.name).suite == "MultiPL-E MBPP"
    [problem] = load_benchmark(info.name, data_dir=tmp_path).problems
    assert (problem.name, problem.language, problem.benchmark) == (MBPP_PY["name"], "python", info.name)
    right = "    return n < 2 or any(n % d == 0 for d in range(2, n))\n"
    assert _python_passes(problem.program(right)) and not _python_passes(problem.program("    return False\n"))


def test_export_cli_writes_records(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    result = codequant(
        "benchmarks", "export", "mceval-python", "--exclude-humaneval-overlap", "--out", out, timeout=120
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 42 and records[0]["language"] == "python"
