"""Flip analysis (per-problem Fisher + BH, against a brute-force hypergeometric sum), the failure taxonomy, and the
report's "what broke" tables and side-by-side completions."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from codequant.store import Store
from codequant_reporter.failures import exception_type, failure_kind
from codequant_reporter.flips import fisher_p, flips
from codequant_reporter.pairing import Paired
from codequant_reporter.report import write_report
from tests.reporter.synthetic import SPEC, write_study


def brute_fisher(a: int, b: int, n: int) -> float:
    """Sum of the hypergeometric probabilities of all tables with the same margins no likelier than the observed."""
    total = a + b

    def prob(x: int) -> float:
        return math.comb(n, x) * math.comb(n, total - x) / math.comb(2 * n, total)

    observed = prob(a)
    return sum(prob(x) for x in range(max(0, total - n), min(n, total) + 1) if prob(x) <= observed * (1 + 1e-9))


@pytest.mark.parametrize(("a", "b", "n"), [(5, 0, 5), (3, 2, 5), (20, 11, 20), (0, 0, 4), (7, 1, 10), (1, 6, 6)])
def test_fisher_matches_brute_force(a: int, b: int, n: int) -> None:
    assert fisher_p(a, b, n) == pytest.approx(min(1.0, brute_fisher(a, b, n)), rel=1e-9)


def test_flips_separate_noise_from_real_change() -> None:
    n = 10
    baseline = {f"lost{i}": [True] * n for i in range(4)}
    variant = {f"lost{i}": [False] * n for i in range(4)}
    baseline |= {"wobble": [True] * 6 + [False] * 4, "gained": [False] * n, "same": [True] * 5 + [False] * 5}
    variant |= {"wobble": [True] * 5 + [False] * 5, "gained": [True] * n, "same": [False] * 5 + [True] * 5}
    problems = sorted(baseline)
    found = {f.problem: f for f in flips(Paired(problems, baseline, variant))}
    assert set(found) == {"lost0", "lost1", "lost2", "lost3", "wobble", "gained"}  # equal counts are no flip
    assert all(found[f"lost{i}"].real and found[f"lost{i}"].lost for i in range(4))
    assert found["gained"].real and found["gained"].direction == "gained"
    assert not found["wobble"].real and found["wobble"].lost
    # Benjamini-Hochberg by hand over all 7 problems (the equal one has p = 1).
    raw = sorted([fisher_p(n, 0, n)] * 5 + [fisher_p(6, 5, n), 1.0])
    expected = min(min(1.0, raw[j] * 7 / (j + 1)) for j in range(5, 7))
    assert found["wobble"].adjusted_p == pytest.approx(expected)


def test_failure_kinds_come_from_the_execution_records() -> None:
    python_trace = 'Traceback (most recent call last):\n  File "x.py", line 3\nZeroDivisionError: division by zero\n'
    java_trace = 'Exception in thread "main" java.lang.NullPointerException: Cannot invoke\n\tat Problem.main'
    assert exception_type(python_trace) == "ZeroDivisionError" and exception_type(java_trace) == "NullPointerException"
    kind = failure_kind
    assert kind("OK", "", "return 1", "stop", "python") is None
    assert kind("Exception", python_trace, "return 1/0", "stop", "python") == "exception: ZeroDivisionError"
    assert kind("Exception", java_trace, "return x.y();", "stop", "java") == "exception: NullPointerException"
    assert kind("SyntaxError", "", "def f(:", "stop", "python") == "syntax error"
    assert kind("SyntaxError", "error: ';' expected", "int x", "stop", "java") == "compile error"
    assert kind("Failure", "AssertionError", "return 2", "stop", "python") == "assertion failure"
    assert kind("Timeout", "", "while True: pass", "stop", "python") == "timeout"
    assert kind("MemoryLimit", "MemoryError", "x = [0] * 10**12", "stop", "python") == "memory"
    assert kind("SyntaxError", "", "   \n", "stop", "python") == "empty completion"
    assert kind("SyntaxError", "", "    x = (1 +\n", "length", "python") == "truncated completion"
    assert kind("Failure", "", "    x = 1\n" * 12, "length", "python") == "repetition"


def test_the_report_shows_what_broke(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "study.yaml").write_text(SPEC)
    write_study(Store(f"sqlite:///{folder / 'store.db'}"))
    write_report(folder, formats=["html", "csv", "json"])
    out = folder / "report"
    payload = json.loads((out / "report.json").read_text())
    summary = payload["tables"]["flips"]["records"]
    assert len(summary) == 2 * 7 * 4
    two_bit = [r for r in summary if r["variant"] == "aqlm-2bit"]
    assert sum(r["lost_real"] for r in two_bit) > 0 and all(r["gained_real"] == 0 for r in two_bit)
    broke = payload["tables"]["what-broke"]["records"]
    assert broke and all(r["variant_passes"] < r["baseline_passes"] for r in broke)
    assert all(r["variant_failures"].startswith("assertion failure ×") for r in broke)  # the synthetic failures
    with (out / "what-broke.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:4] == ["Model", "Variant", "Benchmark", "Problem"] and len(rows) == len(broke) + 1
    taxonomy = {(r["model"], r["variant"]): r["failures"] for r in payload["tables"]["failure-taxonomy"]["records"]}
    assert (
        taxonomy[("Coder-7B", "aqlm-2bit")]["assertion failure"] > taxonomy[("Coder-7B", "fp16")]["assertion failure"]
    )
    html = (out / "report.html").read_text()
    assert "Lost problems: baseline and variant completions side by side" in html
    assert "<th>baseline (passes)</th><th>variant (fails)</th>" in html
