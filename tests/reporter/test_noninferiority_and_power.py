"""Non-inferiority verdicts and the minimum detectable drop, against scipy, statsmodels and brute-force simulation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import bootstrap, ttest_1samp, ttest_rel
from statsmodels.stats.power import TTestPower

from codequant_reporter import noninferiority as ni
from codequant_reporter.power import Design, minimum_detectable_drop, plan, power
from tests.cli import codequant, codequant_in_process


def _rates(rng: np.random.Generator, problems: int, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.choice([0.0, 0.3, 0.7, 1.0], size=problems)
    base = rng.binomial(n, truth) / n
    var = rng.binomial(n, np.clip(truth + shift, 0, 1)) / n
    return base, var


@pytest.mark.parametrize(("shift", "seed"), [(0.0, 1), (-0.05, 2), (-0.3, 3)])
def test_bounds_are_scipys_one_sided_t_interval_and_near_a_problem_bootstrap(shift: float, seed: int) -> None:
    base, var = _rates(np.random.default_rng(seed), 80, 10, shift)
    found = ni.noninferiority(base, var, margin_pp=5, alpha=0.05)
    d = 100 * (var - base)
    # A one-sided 95 % bound is one end of the two-sided 90 % interval.
    interval = ttest_1samp(d, 0).confidence_interval(0.90)
    assert found.lower_pp == pytest.approx(interval.low) and found.upper_pp == pytest.approx(interval.high)
    assert found.change_pp == pytest.approx(float(np.mean(d)))
    # With 80 problems the problem-level percentile bootstrap gives nearly the same bounds.
    boot = bootstrap((d,), np.mean, confidence_level=0.90, method="percentile", random_state=seed).confidence_interval
    assert found.lower_pp == pytest.approx(boot.low, abs=0.6) and found.upper_pp == pytest.approx(boot.high, abs=0.6)


def test_verdicts_agree_with_a_one_sided_t_test_with_the_margin() -> None:
    rng = np.random.default_rng(7)
    for problems, shift, margin in [(200, 0.0, 5), (200, -0.3, 5), (200, -0.02, 10), (8, 0.0, 2)]:
        base, var = _rates(rng, problems, 10, shift)
        found = ni.noninferiority(base, var, margin_pp=margin)
        d = 100 * (var - base)
        p_ni = ttest_1samp(d, -margin, alternative="greater").pvalue  # H0: change <= -margin
        p_drop = ttest_1samp(d, 0, alternative="less").pvalue  # H0: change >= 0
        expected = {
            (True, True): ni.NON_INFERIOR_WITH_DROP,
            (True, False): ni.NON_INFERIOR,
            (False, True): ni.DROP,
            (False, False): ni.INCONCLUSIVE,
        }[(p_ni < 0.05, p_drop < 0.05)]
        assert found.verdict == expected, (problems, shift, margin, found)
        assert found.p_noninferior == pytest.approx(p_ni)
    assert ni.noninferiority([0.5] * 40, [0.5] * 40, margin_pp=1).verdict == ni.NON_INFERIOR
    assert ni.noninferiority([0.5] * 40, [0.4] * 40, margin_pp=5).verdict == ni.DROP  # identical differences
    for margin in (0, 100):
        with pytest.raises(ValueError, match="margin"):
            ni.noninferiority([0.5, 0.5], [0.5, 0.5], margin_pp=margin)


@pytest.mark.parametrize(
    ("base", "var"),
    [
        ([1.0, 1.0, 0.0], [0.0, 0.0, 0.0]),  # scipy's lower bound −164 pp
        ([0.0, 0.0, 1.0], [1.0, 1.0, 1.0]),  # scipy's upper bound +164 pp
        ([1.0, 0.6, 0.4], [0.0, 0.2, 0.4]),  # lower bound −122 pp, upper bound +5 pp
    ],
)
def test_bounds_are_clipped_to_the_feasible_range_and_the_verdict_is_the_t_tests(base, var) -> None:
    """A difference of pass rates lies in [−100, 100] pp; the t interval of 3 problems reaches past it."""
    found = ni.noninferiority(base, var, margin_pp=2)
    d = 100 * (np.asarray(var) - np.asarray(base))
    interval = ttest_1samp(d, 0).confidence_interval(0.90)
    assert interval.low < -100 or interval.high > 100  # the case the clipping is for
    assert found.lower_pp == pytest.approx(max(interval.low, -100))
    assert found.upper_pp == pytest.approx(min(interval.high, 100))
    assert -100 <= found.lower_pp <= found.change_pp <= found.upper_pp <= 100
    p_ni = ttest_1samp(d, -2, alternative="greater").pvalue
    p_drop = ttest_1samp(d, 0, alternative="less").pvalue
    assert (found.passes, found.verdict == ni.DROP) == (p_ni < 0.05, p_drop < 0.05)
    assert "[-100.0, " in found.reason() or ", +100.0] pp" in found.reason()


def test_a_baseline_that_passes_nothing_gives_an_uninformative_verdict_never_non_inferior() -> None:
    """Where the baseline passes nothing no drop can be seen: identical zeros (bounds [0, 0], which the t-test
    alone calls non-inferior), a variant that gains, and one baseline pass that makes a drop visible again."""
    nothing = ni.noninferiority([0.0] * 30, [0.0] * 30, margin_pp=2)
    assert nothing.verdict == ni.UNINFORMATIVE == "uninformative: the baseline passes nothing"
    assert not nothing.passes and (nothing.lower_pp, nothing.upper_pp) == (0.0, 0.0)
    assert nothing.reason().startswith("uninformative: the baseline passes nothing, so no drop can be seen")
    gain = ni.noninferiority([0.0] * 30, [0.5] * 15 + [0.0] * 15, margin_pp=2)
    assert gain.verdict == ni.UNINFORMATIVE and not gain.passes and gain.lower_pp > 0
    one_pass = ni.noninferiority([0.1] + [0.0] * 29, [0.1] + [0.0] * 29, margin_pp=2)
    assert one_pass.verdict == ni.NON_INFERIOR and one_pass.passes


def test_the_minimum_detectable_drop_matches_statsmodels_power_of_the_paired_t_test() -> None:
    """With every problem at rate p, per-problem differences have variance (p(1−p) + q(1−q))/n: statsmodels'
    power of the one-sided one-sample t-test gives the drop detected with power 0.8 (solved to a fixed point)."""
    p, n, problems = 0.5, 10, 60
    found = minimum_detectable_drop(Design((p,) * 5, problems, n), seed=3)
    drop = 0.05
    for _ in range(20):
        q = p - drop
        sd = np.sqrt((p * (1 - p) + q * (1 - q)) / n)
        effect = TTestPower().solve_power(nobs=problems, alpha=0.05, power=0.8, alternative="larger")
        drop = effect * sd
    assert found == pytest.approx(100 * drop, abs=1.0)


def test_power_at_the_minimum_detectable_drop_is_0_8_in_a_brute_force_simulation() -> None:
    rng = np.random.default_rng(11)
    rates = tuple(rng.choice([0.0, 0.2, 0.5, 0.9, 1.0], size=40))
    design = Design(rates, 40, 5)
    found = minimum_detectable_drop(design, seed=0)
    assert found is not None

    def detected_share(drop_pp: float, runs: int = 1500) -> float:
        hits = 0
        mean = float(np.mean(rates))
        for _ in range(runs):
            p = rng.choice(rates, size=40)
            q = p * (1 - drop_pp / 100 / mean)
            base, var = rng.binomial(5, p) / 5, rng.binomial(5, q) / 5
            if np.any(var != base):
                hits += ttest_rel(var, base, alternative="less").pvalue < 0.05
        return hits / runs

    assert detected_share(found) == pytest.approx(0.8, abs=0.04)
    assert detected_share(found - 4) < 0.75
    assert power(design, found, seed=0) >= 0.8


def test_nothing_is_detectable_without_passes_or_problems() -> None:
    assert minimum_detectable_drop(Design((0.0,) * 10, 10, 5)) is None
    assert minimum_detectable_drop(Design((0.5,), 1, 5)) is None


def test_the_plan_needs_more_problems_or_samples_for_a_smaller_margin() -> None:
    rates = tuple(np.random.default_rng(5).choice([0.0, 0.4, 0.8, 1.0], size=30))
    wide, narrow = plan(rates, 5, 10.0, simulations=400), plan(rates, 5, 4.0, simulations=400)
    assert wide.problems_needed is not None and narrow.problems_needed is not None
    assert narrow.problems_needed > wide.problems_needed and narrow.n_needed > wide.n_needed
    # The answer is the design whose detectable drop is the margin.
    needed = Design(rates, narrow.problems_needed, 5)
    assert minimum_detectable_drop(needed, simulations=400) == pytest.approx(4.0, abs=0.6)
    assert plan(rates, 5, 99.0).problems_needed is None  # a drop larger than the baseline's pass@1


def test_plan_cli_answers_how_many_problems_and_samples_like_statsmodels(tmp_path) -> None:
    """Every problem at 0.5 with n = 20: statsmodels' t-test power gives the problems a 3 pp drop needs."""
    done = codequant(
        "plan", "--pass-rate", "0.5", "--problems", "164", "--n", "20", "--margin", "3", "--json", timeout=180
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["plans"]
    sd = np.sqrt((0.25 + 0.47 * 0.53) / 20)
    expected = TTestPower().solve_power(effect_size=0.03 / sd, alpha=0.05, power=0.8, alternative="larger")
    assert row["problems_needed"] == pytest.approx(expected, rel=0.1)
    assert row["n_needed"] >= 20 > 0 and row["detectable_drop_pp"] > 3
    (tmp_path / "b.jsonl").write_text(
        "".join(
            json.dumps({"name": f"p{i}", "sample": s, "passed": s < i % 4}) + "\n" for i in range(30) for s in range(4)
        )
    )
    table = codequant("plan", "--baseline", tmp_path / "b.jsonl", "--margin", "10", timeout=180)
    assert table.returncode == 0 and "problems for 10 pp" in table.stdout
    assert codequant_in_process("plan", "--margin", "2").returncode == 2  # neither --baseline nor --pass-rate
