"""`codequant generate | execute | compare` on files, and the generation exported to MultiPL-E and EvalPlus."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from tests.cli import codequant_ok


def ok(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return codequant_ok(*args, timeout=600)


@pytest.mark.slow  # serves the tiny model
def test_generate_execute_compare_and_export(server: str, tmp_path: Path) -> None:
    generated = tmp_path / "generated.jsonl"
    sampling = ("--n", "2", "--temperature", "0.2", "--max-new-tokens", "120")
    ok(
        "generate",
        "--endpoint",
        server,
        "--api",
        "openai",
        "--benchmark",
        "humaneval",
        "--limit",
        "3",
        *sampling,
        "--out",
        generated,
    )
    records = [json.loads(line) for line in generated.read_text().splitlines()]
    assert len(records) == 6 and all("tests" not in r for r in records)
    assert {(r["benchmark"], r["temperature"], r["top_p"], r["max_tokens"]) for r in records} == {
        ("humaneval", 0.2, 0.95, 120)
    }
    ok("execute", generated, "--out", tmp_path / "executed.jsonl", "--workers", "2")
    executed = [json.loads(line) for line in (tmp_path / "executed.jsonl").read_text().splitlines()]
    passed = sum(r["passed"] for r in executed) / len(executed)
    report = ok("compare", "--baseline", tmp_path / "executed.jsonl", tmp_path / "executed.jsonl", "--json")
    assert json.loads(report.stdout)[0]["pass_at_k"]["pass@1"] == pytest.approx(passed)
    ok("convert", tmp_path / "executed.jsonl", "--from", "jsonl", "--to", "multiple", "--out", tmp_path / "multiple")
    for path in (tmp_path / "multiple").iterdir():
        data = json.loads(gzip.decompress(path.read_bytes()))
        assert (data["temperature"], data["top_p"], data["max_tokens"]) == (0.2, 0.95, 120)
        assert len(data["results"]) == 2 and data["language"] == "py"
