"""The pass@k tables `codequant run` prints at its end, from a synthetic study in a real store."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from rich.console import Console

from codequant.store import Store, Verification
from codequant.study import load_study
from codequant_orchestrator.plan import plan_study
from codequant_orchestrator.summary import print_summary
from codequant_reporter.report import write_report
from codequant_reporter.study_data import load_study_data
from tests.reporter.synthetic import SPEC, write_study
from tests.reporter.test_verdict_checks import _flakes, _self_check


def _summary(tmp_path: Path, n: int) -> tuple[str, Store]:
    spec = SPEC.replace("sampling: {n: 6}", f"sampling: {{n: {n}}}")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "study.yaml").write_text(spec)
    store = Store(f"sqlite:///{folder / 'store.db'}")
    write_study(store, spec=spec)
    console = Console(record=True, width=400, file=io.StringIO())
    print_summary(console, plan_study(load_study(folder / "study.yaml")), store)
    return console.export_text(), store


def test_pass_at_10_is_printed_when_n_allows_and_matches_the_estimator(tmp_path: Path) -> None:
    text, store = _summary(tmp_path, 12)
    assert "pass@1" in text and "pass@10" in text and "pass@100" not in text
    data = load_study_data(store, "synthetic")
    pass10 = text[text.index("pass@10") :]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in pass10.splitlines() if "│" in line]
    model = data.models[0]
    below_one = 0
    for variant in model.variants:
        # 1 - C(n-c, 10) / C(n, 10) per problem, exact binomials, on the stored outcomes
        outcomes = [list(s.values()) for s in data.outcomes[(variant.key, "multiple-humaneval-py")].values()]
        expected = sum(1 - math.comb(12 - sum(v), 10) / math.comb(12, 10) for v in outcomes) / len(outcomes)
        row = next(r for r in rows if r[:2] == [model.name, variant.name])
        assert row[2] == f"{100 * expected:.1f}"  # the first benchmark column: multiple-humaneval-py
        below_one += expected < 0.995
    assert below_one >= 3  # the figures are not all a trivial 100.0


def test_only_pass_at_1_below_ten_samples(tmp_path: Path) -> None:
    text, _ = _summary(tmp_path, 6)
    assert "pass@1" in text and "pass@10" not in text


def test_the_tables_digest_is_printed_and_follows_every_cell(tmp_path: Path) -> None:
    from codequant_orchestrator.summary import table_digest

    text, _ = _summary(tmp_path, 6)
    table = text[text.index("pass@1") : text.index("table digest")]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines() if "│" in line]
    printed = [["1", *row] for row in rows]
    assert f"table digest: {table_digest(printed)}" in text
    # Pinned for a fixed input: the README carries the demo table's digest, so its definition must not drift.
    assert table_digest([["1", "m", "v", "75.0"]]) == "ec235b78b7132e1f"
    assert table_digest([["1", "m", "v", "75.0"]]) != table_digest([["1", "m", "v", "75.1"]])


def test_problems_the_verdict_checks_leave_out_are_left_out_as_in_the_report(tmp_path: Path) -> None:
    """Two mceval-python references failed the self-check and one multiple-humaneval-java problem's verdict flipped
    (policy exclude): the summary's pass@1 is the report's for every variant and benchmark, and the summary says
    how many problems were left out and why."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "study.yaml").write_text(SPEC)
    store = Store(f"sqlite:///{folder / 'store.db'}")
    write_study(store, spec=SPEC)
    plan = plan_study(load_study(folder / "study.yaml"))
    python = [p.name for p in plan.benchmarks["mceval-python"].problems]
    java = [p.name for p in plan.benchmarks["multiple-humaneval-java"].problems]
    failures = {name: "reference Failure then Failure: AssertionError" for name in python[:2]}
    flipped = _flakes("Coder-7B/aqlm-2bit", [(java[3], ("Failure", "OK")), (java[4], ("Failure",) * 2)], "exclude")
    checks = [
        ("self-check", "mceval-python", _self_check(failures)),
        ("flakes", "multiple-humaneval-java", {**flipped, "benchmark": "multiple-humaneval-java"}),
    ]
    store.insert_ignore(
        Verification,
        [
            {"key": kind, "study_id": "synthetic", "kind": kind, "benchmark": benchmark, "result": result}
            for kind, benchmark, result in checks
        ],
    )
    console = Console(record=True, width=400, file=io.StringIO())
    print_summary(console, plan, store)
    text = console.export_text()
    assert "mceval-python: 2 of 10 problems left out, as in the report (2 failed the reference self-check)" in text
    assert "multiple-humaneval-java: 1 of 12 problems left out, as in the report (1 with a flipping verdict)" in text
    assert "mceval-java: " not in text and "multiple-humaneval-py: " not in text
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if "│" in line]
    cells = {(row[0], row[1]): dict(zip(plan.benchmarks, row[2:], strict=True)) for row in rows if row[0] != "model"}
    write_report(folder, formats=["json"])
    comparisons = json.loads((folder / "report" / "report.json").read_text())["comparisons"]
    assert len(comparisons) == 2 * 7 * 4
    kept = {"multiple-humaneval-py": 12, "multiple-humaneval-java": 11, "mceval-python": 8, "mceval-java": 10}
    for c in comparisons:
        model, benchmark = c["labels"]["model"], c["labels"]["benchmark"]
        assert c["problems"] == kept[benchmark]
        assert cells[(model, c["variant"])][benchmark] == f"{100 * c['pass_at_k']['pass@1']:.1f}"
        assert cells[(model, "fp16")][benchmark] == f"{100 * c['baseline_pass_at_k']['pass@1']:.1f}"
