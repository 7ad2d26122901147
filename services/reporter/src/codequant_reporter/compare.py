"""Variant-vs-baseline comparison: pass@k, the paired 2x2 table, McNemar, odds ratio, problem-level tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from codequant.errors import InputError
from codequant.passk import mean_pass_at_k
from codequant_reporter import stats
from codequant_reporter.pairing import Paired, outcomes, pair


@dataclass
class Comparison:
    """One variant against its baseline on one set of problems."""

    variant: str
    problems: int
    samples_per_problem: int
    pass_at_k: dict[str, float]  # "pass@1" -> value, for the variant
    baseline_pass_at_k: dict[str, float]
    table: dict[str, int]  # both, baseline_only, variant_only, neither
    mcnemar_p: float
    mcnemar_method: str
    odds_ratio: float
    relative_change_pct: float | None
    wilcoxon_p: float
    bootstrap_ci: tuple[float, float]  # 95 % CI of the pass@1 difference (variant - baseline)
    adjusted_p: float | None = None
    significance: str = ""
    alpha: float = 0.05
    memory_reduction_pct: float | None = None
    labels: dict[str, str] = field(default_factory=dict)  # model, benchmark, language, ... when known

    @property
    def pass1(self) -> float:
        return self.pass_at_k["pass@1"]

    @property
    def baseline_pass1(self) -> float:
        return self.baseline_pass_at_k["pass@1"]

    @property
    def significant(self) -> bool:
        """Adjusted p-value below alpha."""
        return self.adjusted_p is not None and self.adjusted_p < self.alpha

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bootstrap_ci"] = list(self.bootstrap_ci)
        data["significant"] = self.significant
        return data


def compare_paired(
    paired: Paired,
    variant: str,
    *,
    ks: Sequence[int] = (1,),
    bootstrap_samples: int = 10000,
    seed: int = 0,
    memory: tuple[int, int] | None = None,
    labels: dict[str, str] | None = None,
) -> Comparison:
    """Statistics of one paired comparison (no multiple-testing adjustment yet)."""
    n_values = set(paired.n.values())
    if len(n_values) != 1:
        raise InputError(f"{variant}: problems have different sample counts {sorted(n_values)}; pass@k needs one n")
    n = n_values.pop()
    bad_k = [k for k in ks if not 1 <= k <= n]
    if bad_k:
        raise InputError(f"pass@k needs 1 <= k <= n={n}, got k={', '.join(map(str, bad_k))}")
    base_counts = [(n, sum(paired.baseline[p])) for p in paired.problems]
    var_counts = [(n, sum(paired.variant[p])) for p in paired.problems]
    both, base_only, var_only, neither = paired.table()
    p_value, method = stats.mcnemar(base_only, var_only)
    base_rates = [c / n for _, c in base_counts]
    var_rates = [c / n for _, c in var_counts]
    base_k = {f"pass@{k}": mean_pass_at_k(base_counts, k) for k in sorted({1, *ks})}
    var_k = {f"pass@{k}": mean_pass_at_k(var_counts, k) for k in sorted({1, *ks})}
    reduction = None
    if memory is not None and memory[0] > 0:
        reduction = (1 - memory[1] / memory[0]) * 100
    return Comparison(
        variant=variant,
        problems=len(paired.problems),
        samples_per_problem=n,
        pass_at_k=var_k,
        baseline_pass_at_k=base_k,
        table={"both": both, "baseline_only": base_only, "variant_only": var_only, "neither": neither},
        mcnemar_p=p_value,
        mcnemar_method=method,
        odds_ratio=stats.odds_ratio(base_only, var_only),
        relative_change_pct=stats.relative_change(base_k["pass@1"], var_k["pass@1"]),
        wilcoxon_p=stats.problem_wilcoxon(base_rates, var_rates),
        bootstrap_ci=stats.bootstrap_ci(base_rates, var_rates, samples=bootstrap_samples, seed=seed),
        memory_reduction_pct=reduction,
        labels=dict(labels or {}),
    )


def adjust_family(
    comparisons: Sequence[Comparison], correction: str = "benjamini-hochberg", alpha: float = 0.05
) -> None:
    """Set adjusted p-values and marks for comparisons that form one multiple-testing family."""
    adjusted = stats.adjust([c.mcnemar_p for c in comparisons], correction)
    for comparison, p in zip(comparisons, adjusted, strict=True):
        comparison.adjusted_p = p
        comparison.significance = stats.mark(p)
        comparison.alpha = alpha


def compare(
    baseline: list[dict[str, Any]],
    variants: dict[str, list[dict[str, Any]]],
    *,
    alpha: float = 0.05,
    correction: str = "benjamini-hochberg",
    ks: tuple[int, ...] = (1,),
    bootstrap_samples: int = 10000,
    seed: int = 0,
    footprints: dict[str, int] | None = None,
) -> list[Comparison]:
    """Compare each variant's per-sample results with the baseline's; the comparisons form one family.

    Records: {name, sample, passed}. ``footprints`` maps "baseline" and variant names to bytes.
    ``alpha`` decides ``significant``; the marks use the fixed thresholds.
    """
    base = outcomes(baseline, "baseline")
    results = []
    for name, records in variants.items():
        paired = pair(base, outcomes(records, name), name)
        memory = None
        if footprints and "baseline" in footprints and name in footprints:
            memory = (footprints["baseline"], footprints[name])
        results.append(
            compare_paired(
                paired,
                name,
                ks=ks,
                bootstrap_samples=bootstrap_samples,
                seed=seed,
                memory=memory,
                labels={"alpha": str(alpha)},
            )
        )
    adjust_family(results, correction, alpha)
    return results
