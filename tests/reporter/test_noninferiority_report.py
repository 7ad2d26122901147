"""The report's verdict table: every comparison gets a verdict with the study's margin, and every non-significant
one the drop the study could have detected; the bounds are scipy's t interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ttest_1samp
from sqlalchemy import select, update

from codequant.store import Completion, Execution, Store
from codequant.study import parse_study
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


def test_a_benchmark_the_baseline_never_passes_is_uninformative_in_the_table(tmp_path: Path) -> None:
    """Coder-7B's baseline made to fail every sample of mceval-java: each of its variants is uninformative there
    (not non-inferior, whatever it passes), with the reason in the table's notes; its other benchmarks keep
    their verdicts."""
    spec = SPEC.replace("statistics: {bootstrap_samples: 500}", "statistics: {bootstrap_samples: 200, margin_pp: 5}")
    (tmp_path / "study.yaml").write_text(spec)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    write_study(store, spec=spec)
    model = next(m for m in parse_study(spec).models if m.name == "Coder-7B")
    with store.session() as session:
        keys = select(Completion.execution_key).where(
            Completion.variant_key == model.variant_key("fp16"), Completion.benchmark == "mceval-java"
        )
        assert session.execute(update(Execution).where(Execution.key.in_(keys)).values(passed=False)).rowcount > 0
    write_report(tmp_path, formats=["json", "md"])
    table = json.loads((tmp_path / "report" / "report.json").read_text())["tables"]["noninferiority"]
    verdicts = {(r["model"], r["variant"], r["benchmark"]): r for r in table["records"]}
    java = [r for (m, _, b), r in verdicts.items() if (m, b) == ("Coder-7B", "mceval-java")]
    assert len(java) == 7
    assert all(r["verdict"] == "uninformative: the baseline passes nothing" and not r["passes"] for r in java)
    others = [r for (m, _, b), r in verdicts.items() if (m, b) != ("Coder-7B", "mceval-java")]
    assert all(r["verdict"] in VERDICTS for r in others)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "uninformative: the baseline passes no sample of any problem" in md
