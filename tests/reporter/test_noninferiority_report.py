"""The report's verdict table: every comparison gets a verdict with the study's margin, and every non-significant
one the drop the study could have detected; the bounds are scipy's t interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ttest_1samp

from codequant.store import Store
from codequant_reporter.report import write_report
from codequant_reporter.study_data import load_study_data
from tests.reporter.synthetic import SPEC, write_study

VERDICTS = {"non-inferior", "non-inferior (significant drop within the margin)", "drop shown", "inconclusive"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("run")
    spec = SPEC.replace("statistics: {bootstrap_samples: 500}", "statistics: {bootstrap_samples: 2000, margin_pp: 5}")
    (folder / "study.yaml").write_text(spec)
    write_study(Store(f"sqlite:///{folder / 'store.db'}"), spec=spec)
    write_report(folder, formats=["md", "html", "csv", "json"])
    return folder, json.loads((folder / "report" / "report.json").read_text())


def test_every_comparison_has_a_verdict_and_every_non_significant_one_a_detectable_drop(report) -> None:
    folder, payload = report
    table = payload["tables"]["noninferiority"]
    assert len(table["records"]) == len(payload["comparisons"]) == 2 * 7 * 4
    assert "margin of 5 pp" in table["title"]
    for record, row in zip(table["records"], table["rows"], strict=True):
        assert record["verdict"] in VERDICTS and record["margin_pp"] == 5
        if record["significant"]:
            assert row[-1] == ""
        else:
            assert row[-1].startswith("this study could detect drops of ≥ ") or "could not detect" in row[-1]
    two_bit = [r for r in table["records"] if r["variant"] == "aqlm-2bit"]
    assert all(r["verdict"] == "drop shown" for r in two_bit)
    marks = {row[7].split()[0] for row in table["rows"] if row[1] == "aqlm-2bit"}
    assert marks == {"drop"}
    md = (folder / "report" / "report.md").read_text()
    assert "no significant difference" not in md.lower()
    assert "Non-inferiority (margin 5 pp of pass@1): one-sided paired t-tests over per-problem pass rates" in md
    assert (folder / "report" / "noninferiority.csv").read_text().startswith("Model,Variant,Benchmark")


def test_bounds_are_scipys_t_interval(report) -> None:
    folder, payload = report
    data = load_study_data(Store(f"sqlite:///{folder / 'store.db'}"), "synthetic")
    keys = {(v.model, v.name): v.key for m in data.models for v in m.variants}
    record = next(
        r
        for r in payload["tables"]["noninferiority"]["records"]
        if (r["model"], r["variant"], r["benchmark"]) == ("Coder-7B", "aqlm-3bit", "multiple-humaneval-py")
    )
    base = data.outcomes[(keys[("Coder-7B", "fp16")], "multiple-humaneval-py")]
    var = data.outcomes[(keys[("Coder-7B", "aqlm-3bit")], "multiple-humaneval-py")]
    diffs = np.array([np.mean(list(var[p].values())) - np.mean(list(base[p].values())) for p in sorted(base)])
    theirs = ttest_1samp(diffs, 0).confidence_interval(0.90)
    assert record["lower_pp"] == pytest.approx(100 * theirs.low)
    assert record["upper_pp"] == pytest.approx(100 * theirs.high)
    assert record["change_pp"] == pytest.approx(100 * diffs.mean())
