"""HumanEval+, MBPP+, MBPP, MultiPL-E C++/JavaScript and user benchmarks, from small files in the upstream formats
(tests/data/benchmarks/README.md): loading, the numpy stand-in, split filtering, and line-numbered errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codequant.benchmarks import BENCHMARKS, benchmark_info, load_benchmark
from codequant.benchmarks.numpy_standin import STANDIN, without_numpy
from codequant.errors import InputError
from codequant.study import parse_study
from tests.cli import codequant

DATA = Path(__file__).resolve().parents[1] / "data" / "benchmarks"
NEW = {
    "humaneval-plus": [
        "HumanEvalPlus_0_has_close_elements",
        "HumanEvalPlus_2_truncate_number",
        "HumanEvalPlus_4_mean_absolute_deviation",
    ],
    "mbpp-plus": ["MbppPlus_3_is_not_prime", "MbppPlus_17_square_perimeter", "MbppPlus_139_circle_circumference"],
    "mbpp": ["Mbpp_11_remove_Occ", "Mbpp_12_sort_matrix"],
    "multiple-humaneval-cpp": ["HumanEval_23_strlen", "HumanEval_85_add", "HumanEval_63_fibfib"],
    "multiple-humaneval-js": ["HumanEval_23_strlen", "HumanEval_85_add", "HumanEval_17_parse_music"],
}


@pytest.mark.parametrize("name", list(NEW))
def test_new_benchmarks_load_from_files_in_their_upstream_format(name: str) -> None:
    loaded = load_benchmark(name, data_dir=DATA, source="local")
    assert [p.name for p in loaded.problems] == NEW[name]
    assert f"{DATA / name}.jsonl sha256:" in loaded.provenance
    for problem in loaded.problems:
        assert problem.language == BENCHMARKS[name].language and problem.benchmark == name
        assert 1 <= len(problem.stop_tokens) <= 4
        assert "import numpy" not in problem.tests


def test_mbpp_keeps_the_test_split_and_evalplus_tests_lose_numpy() -> None:
    mbpp = load_benchmark("mbpp", data_dir=DATA)
    assert [p.source_id for p in mbpp.problems] == ["11", "12"]  # task 2 (few-shot) and 601 (train) are not tests
    first = mbpp.problems[0]
    assert first.prompt.startswith('"""\nWrite a python function to remove first and last occurrence')
    assert first.prompt.endswith('assert remove_Occ("hello","l") == "heo"\n"""\n')
    assert 'assert remove_Occ("PHP","P") == "H"' in first.tests
    plus = load_benchmark("humaneval-plus", data_dir=DATA).problems[1]
    assert STANDIN in plus.tests and plus.tests.endswith("\n\ncheck(truncate_number)\n")
    assert without_numpy("x = 1\n") == ("x = 1\n", False)


def test_the_numpy_stand_in_compares_like_numpy() -> None:
    namespace: dict = {}
    exec(STANDIN, namespace)
    np = namespace["np"]
    assert np.allclose(1.0, 1.0 + 1e-9) and not np.allclose(1.0, 1.1)
    assert np.allclose([1.0, [2.0, 3.0]], [1.0, [2.0, 3.0 + 1e-9]]) and not np.allclose([1.0], [1.0, 2.0])
    assert not np.allclose(float("nan"), float("nan"))
    np.testing.assert_allclose(0.5, 0.5 + 1e-7, atol=1e-6)
    with pytest.raises(AssertionError, match="not close"):
        np.testing.assert_allclose(0.5, 0.6, atol=1e-6)


def test_the_evalplus_release_format_builds_its_tests_and_bad_rows_name_their_line(tmp_path: Path) -> None:
    release = DATA / "evalplus-release" / "humaneval-plus.jsonl"
    problems = load_benchmark("humaneval-plus", data_dir=release.parent).problems
    assert [p.source_id for p in problems] == ["HumanEval/0", "HumanEval/2", "HumanEval/32"]
    assert all(p.tests.endswith(f"\n\ncheck({p.entry_point})\n") and "_cq_reference" in p.tests for p in problems)
    row = json.loads(release.read_text().splitlines()[0])
    for field, value, message in (
        ("plus_input", "nope", "fields 'base_input' and 'plus_input' must be lists of argument lists"),
        ("atol", "0", "field 'atol' must be a number"),
    ):
        (tmp_path / "humaneval-plus.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({**row, field: value}))
        with pytest.raises(InputError, match=rf"humaneval-plus\.jsonl:2: {message}"):
            load_benchmark("humaneval-plus", data_dir=tmp_path)


def _user_file(tmp_path: Path, *rows: dict) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


ROW = {
    "name": "HumanEval_23_strlen",
    "language": "js",
    "prompt": "function strlen(string){\n",
    "tests": "const assert = require('node:assert');\nassert.deepEqual(strlen('ab'), 2);\n",
    "stop_tokens": ["\nfunction "],
}


def test_a_user_benchmark_is_named_by_path_in_a_study(tmp_path: Path) -> None:
    path = _user_file(tmp_path, ROW, {**ROW, "name": "two", "canonical_solution": "  return string.length;\n}"})
    study = parse_study(
        f"""
name: s
models:
  - name: m
    builtin: tiny-code
    variants: [{{name: base, method: baseline}}]
benchmarks:
  - {{path: {path}, limit: 5}}
  - multiple-humaneval-py
"""
    )
    spec = study.benchmarks[0]
    assert spec.name == "mine" and spec.path == str(path)
    loaded = spec.load()
    assert [p.name for p in loaded.problems] == ["HumanEval_23_strlen", "two"]
    assert loaded.problems[1].canonical_solution == "  return string.length;\n}"
    assert {p.language for p in loaded.problems} == {"javascript"} and "sha256:" in loaded.provenance
    assert benchmark_info("mine").language == "javascript" and benchmark_info("mine").suite == "mine"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{k: v for k, v in ROW.items() if k != "tests"}], r"mine\.jsonl:1: field 'tests' is missing"),
        ([ROW, {**ROW, "name": "b", "language": "cobol"}], r"mine\.jsonl:2: field 'language' must be one of"),
        ([ROW, {**ROW, "name": "b", "language": "py"}], r"mine\.jsonl:2: field 'language' is 'py', but"),
        ([ROW, ROW], r"mine\.jsonl:2: field 'name' 'HumanEval_23_strlen' repeats line 1"),
        ([{**ROW, "stop_tokens": "\n}"}], r"mine\.jsonl:1: field 'stop_tokens' must be a list"),
        ([{**ROW, "prompt": 3}], r"mine\.jsonl:1: field 'prompt' must be a string, got int"),
    ],
)
def test_bad_user_benchmarks_name_file_line_and_field(tmp_path: Path, rows: list, message: str) -> None:
    path = _user_file(tmp_path, *rows)
    with pytest.raises(InputError, match=message):
        load_benchmark("mine", path=path)


def test_validate_reports_a_bad_user_benchmark_in_one_line_and_exits_2(tmp_path: Path) -> None:
    path = _user_file(tmp_path, ROW, {**ROW, "name": "b", "tests": None})
    study = tmp_path / "study.yaml"
    study.write_text(
        "name: s\nmodels:\n  - name: m\n    builtin: tiny-code\n    variants: [{name: base, method: baseline}]\n"
        f"benchmarks:\n  - path: {path}\n"
    )
    result = codequant("validate", str(study), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(f"{path}:2: field 'tests' must be a string, got NoneType")
    missing = parse_study_error(tmp_path, "path: nowhere.jsonl")
    assert missing == "<study>:7: benchmarks[0].path: benchmark file 'nowhere.jsonl' does not exist"
    assert "built-in benchmark" in parse_study_error(tmp_path, f"{{name: mbpp, path: {path}}}")


def parse_study_error(tmp_path: Path, benchmark: str) -> str:
    from codequant.study import StudyError

    text = (
        "name: s\nmodels:\n  - name: m\n    builtin: tiny-code\n    variants: [{name: base, method: baseline}]\n"
        f"benchmarks:\n  - {benchmark}\n"
    )
    with pytest.raises(StudyError) as caught:
        parse_study(text)
    return str(caught.value)


def test_benchmarks_list_shows_which_data_is_missing(tmp_path: Path) -> None:
    for name in ("mbpp", "multiple-humaneval-cpp"):
        (tmp_path / f"{name}.jsonl").write_text((DATA / f"{name}.jsonl").read_text())
    result = codequant("benchmarks", "list", "--data-dir", str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("mbpp " in line and " 2 " in line for line in lines)
    assert any(line.startswith("mbpp-plus: not available") and "benchmark file not found" in line for line in lines)
    assert "humaneval-plus: not available" in result.stdout
