"""Perplexity vs pass@1: Spearman's rho checked against scipy, the 'hidden loss' thresholds, and the report's
table, note and plot on a synthetic study where one variant's perplexity barely moves while pass@1 falls."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from scipy import stats

from codequant.store import ServingMeasurement, Store
from codequant_reporter.perplexity_vs_pass import PASS1_FALL_PP, PPL_BARELY_PCT, Point, spearman
from codequant_reporter.report import write_report
from codequant_reporter.study_data import load_study_data
from tests.reporter.synthetic import SPEC, write_study


@pytest.mark.parametrize("seed", range(40))
def test_spearman_equals_scipy_with_and_without_ties(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(3, 30)
    spread = rng.choice([3, 10, 1000])  # few distinct values: many ties
    xs = [float(rng.randrange(spread)) for _ in range(n)]
    ys = [float(rng.randrange(spread)) for _ in range(n)]
    expected = stats.spearmanr(xs, ys).statistic
    got = spearman(xs, ys)
    if len(set(xs)) == 1 or len(set(ys)) == 1:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-12)


def test_spearman_is_undefined_below_three_pairs_or_without_spread() -> None:
    assert spearman([1.0, 2.0], [2.0, 1.0]) is None
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("ppl", "pass1", "hidden"),
    [
        (PPL_BARELY_PCT, -PASS1_FALL_PP, True),  # both limits belong to 'hidden'
        (-PPL_BARELY_PCT, -10.0, True),
        (PPL_BARELY_PCT + 0.01, -10.0, False),  # perplexity moved
        (0.0, -PASS1_FALL_PP + 0.01, False),  # pass@1 did not fall enough
        (0.0, 5.0, False),
    ],
)
def test_hidden_loss_is_perplexity_within_the_band_and_pass1_down_by_the_threshold(
    ppl: float, pass1: float, hidden: bool
) -> None:
    assert Point("m", "v", "b", ppl, pass1, significant=False).hidden_loss is hidden


def test_the_report_plots_and_tabulates_perplexity_against_pass1_and_names_hidden_losses(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "study.yaml").write_text(SPEC)
    store = Store(f"sqlite:///{folder / 'store.db'}")
    write_study(store)
    data = load_study_data(store, "synthetic")
    model = next(m for m in data.models if m.name == "Coder-7B")
    keys = {v.name: v.key for v in model.variants}
    with store.session() as session:  # 3-bit's perplexity 2 % above fp16's: a loss perplexity does not show
        base = session.get(ServingMeasurement, keys["fp16"]).perplexity
        session.get(ServingMeasurement, keys["aqlm-3bit"]).perplexity = base * 1.02
        session.commit()

    out = folder / "report"
    written = write_report(folder)
    assert written["perplexity_vs_pass1.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads((out / "report.json").read_text())
    table = payload["tables"]["perplexity_vs_pass1"]
    records = table["records"]
    # Independently: the pass@1 change of each record is the comparison's, and 'hidden' follows the thresholds.
    comparisons = {(c["labels"]["model"], c["variant"], c["labels"]["benchmark"]): c for c in payload["comparisons"]}
    for r in records:
        c = comparisons[(r["model"], r["variant"], r["benchmark"])]
        assert r["pass1_change_pp"] == pytest.approx(
            100 * (c["pass_at_k"]["pass@1"] - c["baseline_pass_at_k"]["pass@1"])
        )
        assert r["hidden_loss"] == (abs(r["ppl_change_pct"]) <= 5 and r["pass1_change_pp"] <= -2)
    three_bit = [r for r in records if (r["model"], r["variant"]) == ("Coder-7B", "aqlm-3bit")]
    assert three_bit and all(r["ppl_change_pct"] == pytest.approx(2.0) for r in three_bit)
    assert all(r["hidden_loss"] for r in three_bit)  # skill 0.55 vs 0.7: a fall of ~15 pp
    # RTN was served by an endpoint without /codequant routes: no perplexity, no point.
    assert not any(r["variant"].startswith("rtn") for r in records)
    # The note's rho per benchmark is scipy's on the table's own numbers.
    html = (out / "report.html").read_text()
    for benchmark in {r["benchmark"] for r in records}:
        mine = [r for r in records if r["benchmark"] == benchmark]
        rho = stats.spearmanr([r["ppl_change_pct"] for r in mine], [r["pass1_change_pp"] for r in mine]).statistic
        assert f"{benchmark}: ρ = {rho:+.2f} over {len(mine)} variants" in html
        assert f"Coder-7B/aqlm-3bit on {benchmark}" in html
    assert "<img alt='perplexity_vs_pass1' src='data:image/png;base64," in html
