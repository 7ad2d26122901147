"""`codequant execute` on records as `codequant generate` writes them: tests come from the benchmark they name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codequant.benchmarks import load_benchmark
from tests.interop.test_convert import codequant, ok, rows

STRLEN = load_benchmark("humaneval", problems=["HumanEval_23_strlen"]).problems[0]


def generated(sample: int, completion: str, **fields: object) -> dict:
    """A record with exactly the fields `codequant generate` writes (completion mode)."""
    return {
        "name": STRLEN.name,
        "benchmark": "humaneval",
        "language": "python",
        "sample": sample,
        "prompt": STRLEN.prompt,
        "completion": completion,
        "raw_completion": completion + "\ndef other():\n",
        "finish_reason": "stop",
        "prompt_tokens": 60,
        "completion_tokens": 9,
        "latency_s": 0.1,
        "temperature": 0.2,
        "top_p": 0.95,
        "max_tokens": 64,
        **fields,
    }


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_execute_takes_the_tests_from_the_named_benchmark(tmp_path: Path) -> None:
    source = write(tmp_path / "g.jsonl", [generated(0, "    return len(string)\n"), generated(1, "    return 1\n")])
    ok("execute", source, "--out", tmp_path / "e.jsonl", "--workers", "2")
    executed = rows(tmp_path / "e.jsonl")
    assert [(r["sample"], r["status"], r["passed"]) for r in executed] == [(0, "OK", True), (1, "Failure", False)]
    assert all(r["tests"] == STRLEN.tests and r["temperature"] == 0.2 for r in executed)
    report = ok("compare", "--baseline", tmp_path / "e.jsonl", tmp_path / "e.jsonl", "--json")
    assert json.loads(report.stdout)[0]["pass_at_k"]["pass@1"] == 0.5


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"benchmark": "nope"}, ":2: field 'benchmark': unknown benchmark 'nope'"),
        ({"name": "HumanEval_999_missing"}, ":2: field 'name': no problem 'HumanEval_999_missing' in humaneval"),
    ],
    ids=["unknown-benchmark", "unknown-problem"],
)
def test_a_record_whose_problem_cannot_be_found_stops_everything(tmp_path: Path, fields: dict, message: str) -> None:
    source = write(tmp_path / "g.jsonl", [generated(0, "    return len(string)\n"), generated(1, "", **fields)])
    out = tmp_path / "e.jsonl"
    result = codequant("execute", source, "--out", out)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and f"{source}{message}" in lines[0], result.stderr
    assert not out.exists()


def test_compare_warns_when_variant_and_baseline_were_sampled_differently(tmp_path: Path) -> None:
    base = write(tmp_path / "base.jsonl", [generated(0, "", passed=True), generated(1, "", passed=False)])
    hot = write(tmp_path / "hot.jsonl", [generated(0, "", passed=True, temperature=0.8), generated(1, "", passed=True)])
    result = ok("compare", "--baseline", base, hot, "--json")
    assert "warning: " in result.stderr and "[(0.2, 0.95), (0.8, 0.95)]" in result.stderr
    assert json.loads(result.stdout)[0]["pass_at_k"]["pass@1"] == 1.0
    assert "warning" not in ok("compare", "--baseline", base, base, "--json").stderr
