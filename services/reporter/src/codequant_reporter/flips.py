"""Which problems a variant lost or gained, with sampling noise separated from real change: per problem, Fisher's
exact test on its baseline and variant pass counts (n samples each), Benjamini-Hochberg across the problems of one
comparison."""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests

from codequant_reporter.pairing import Paired


@dataclass(frozen=True)
class Flip:
    """One problem whose pass count changed between the baseline and the variant."""

    problem: str
    n: int
    baseline_passes: int
    variant_passes: int
    p_value: float  # Fisher's exact test, two-sided
    adjusted_p: float  # Benjamini-Hochberg over the comparison's problems
    real: bool  # adjusted p below alpha: more than the n samples explain

    @property
    def lost(self) -> bool:
        return self.variant_passes < self.baseline_passes

    @property
    def direction(self) -> str:
        return "lost" if self.lost else "gained"


def fisher_p(baseline_passes: int, variant_passes: int, n: int) -> float:
    """Two-sided Fisher's exact p-value of two pass counts out of n samples each."""
    table = [[baseline_passes, n - baseline_passes], [variant_passes, n - variant_passes]]
    return float(fisher_exact(table, alternative="two-sided").pvalue)


def flips(paired: Paired, alpha: float = 0.05) -> list[Flip]:
    """Every problem whose pass count differs, most certain first; each problem of the comparison counts in the
    multiple-testing family (a problem with equal counts has p = 1)."""
    counts = [(p, len(paired.baseline[p]), sum(paired.baseline[p]), sum(paired.variant[p])) for p in paired.problems]
    pvalues = [fisher_p(b, v, n) for _, n, b, v in counts]
    if not counts:
        return []
    adjusted = multipletests(pvalues, method="fdr_bh")[1]
    found = [
        Flip(problem, n, b, v, p, float(adj), bool(adj < alpha))
        for (problem, n, b, v), p, adj in zip(counts, pvalues, adjusted, strict=True)
        if b != v
    ]
    return sorted(found, key=lambda f: (f.adjusted_p, f.problem))
