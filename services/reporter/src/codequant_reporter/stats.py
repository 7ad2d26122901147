"""Paired significance tests of the study (the tests themselves come from statsmodels and scipy)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import wilcoxon
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

EXACT_BELOW = 25
MARKS = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "•"))


def mcnemar(base_only: int, var_only: int) -> tuple[float, str]:
    """McNemar's test on the discordant counts: exact binomial below 25, else chi-square with continuity
    correction. Returns (p-value, method)."""
    table = [[0, base_only], [var_only, 0]]
    if base_only + var_only < EXACT_BELOW:
        return float(sm_mcnemar(table, exact=True).pvalue), "exact"
    return float(sm_mcnemar(table, exact=False, correction=True).pvalue), "chi2"


def odds_ratio(base_only: int, var_only: int) -> float:
    """Baseline-only passes / variant-only passes, with 0.5 added to both when either is zero."""
    if base_only == 0 or var_only == 0:
        return (base_only + 0.5) / (var_only + 0.5)
    return base_only / var_only


def adjust(pvalues: Sequence[float], correction: str) -> list[float]:
    """Adjusted p-values for one family of comparisons."""
    if not pvalues:
        return []
    if correction == "none":
        return list(pvalues)
    method = {"benjamini-hochberg": "fdr_bh", "bonferroni": "bonferroni"}[correction]
    return [float(p) for p in multipletests(list(pvalues), method=method)[1]]


def mark(p: float | None) -> str:
    """Significance mark: • p<0.1, * <0.05, ** <0.01, *** <0.001."""
    if p is None:
        return ""
    return next((symbol for threshold, symbol in MARKS if p < threshold), "")


def problem_wilcoxon(base_rates: Sequence[float], var_rates: Sequence[float]) -> float:
    """Wilcoxon signed-rank p-value over per-problem pass rates (1.0 when no problem differs).

    Problems with equal rates are dropped (Wilcoxon's convention). The exact distribution is used for at
    most 50 differing problems without tied magnitudes, else the normal approximation with tie correction
    (scipy's permutation fallback for ties costs seconds per call and adds nothing at these sizes).
    """
    differences = np.asarray(var_rates, dtype=float) - np.asarray(base_rates, dtype=float)
    nonzero = differences[differences != 0]
    if nonzero.size == 0:
        return 1.0
    magnitudes = np.abs(nonzero)
    exact = nonzero.size <= 50 and np.unique(magnitudes).size == magnitudes.size
    result = wilcoxon(nonzero, zero_method="wilcox", method="exact" if exact else "asymptotic")
    return float(result.pvalue)


def bootstrap_ci(
    base_rates: Sequence[float], var_rates: Sequence[float], *, samples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(variant - baseline) pass rate, resampling problems (seeded)."""
    differences = np.asarray(var_rates, dtype=float) - np.asarray(base_rates, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(differences), size=(samples, len(differences)))
    means = differences[picks].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def relative_change(base: float, var: float) -> float | None:
    """(variant - baseline) / baseline in %, None when the baseline is 0."""
    return None if base == 0 else (var - base) / base * 100


def finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
