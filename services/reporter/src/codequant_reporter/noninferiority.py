"""Is a variant's loss negligible? A one-sided, problem-level paired bootstrap against a margin in percentage
points, with a verdict that never stops at "no significant difference"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from codequant_reporter.pairing import Paired
from codequant_reporter.power import Design, minimum_detectable_drop

#: Verdicts, from the gate's point of view: only the first two let a variant through.
NON_INFERIOR = "non-inferior"
NON_INFERIOR_WITH_DROP = "non-inferior (significant drop within the margin)"
DROP = "drop shown"
INCONCLUSIVE = "inconclusive"
PASSING = (NON_INFERIOR, NON_INFERIOR_WITH_DROP)


@dataclass(frozen=True)
class NonInferiority:
    """The verdict on one comparison: change and bounds in percentage points of pass@1 (variant − baseline)."""

    margin_pp: float
    alpha: float
    change_pp: float
    lower_pp: float  # one-sided (1 − α) lower bound of the change
    upper_pp: float  # one-sided (1 − α) upper bound of the change
    p_noninferior: float  # bootstrap p-value of H0: change <= −margin
    verdict: str

    @property
    def passes(self) -> bool:
        return self.verdict in PASSING

    def reason(self) -> str:
        """One line saying why, in the numbers of the verdict."""
        bounds = f"change {self.change_pp:+.1f} pp, one-sided {100 * (1 - self.alpha):g} % bounds "
        bounds += f"[{self.lower_pp:+.1f}, {self.upper_pp:+.1f}] pp, margin {self.margin_pp:g} pp"
        why = {
            NON_INFERIOR: "the lower bound is above -margin",
            NON_INFERIOR_WITH_DROP: "the drop is real but its lower bound is above -margin",
            DROP: "the upper bound is below 0 and the lower bound reaches -margin",
            INCONCLUSIVE: "the lower bound reaches -margin and the upper bound reaches 0: more problems or samples "
            "would decide",
        }[self.verdict]
        return f"{self.verdict}: {why} ({bounds})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passes": self.passes}


def bootstrap_means(base_rates: Sequence[float], var_rates: Sequence[float], *, samples: int, seed: int) -> np.ndarray:
    """Mean per-problem pass-rate difference (variant − baseline) of each bootstrap resample of the problems."""
    differences = np.asarray(var_rates, dtype=float) - np.asarray(base_rates, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(differences), size=(samples, len(differences)))
    return differences[picks].mean(axis=1)


def noninferiority(
    base_rates: Sequence[float],
    var_rates: Sequence[float],
    *,
    margin_pp: float,
    alpha: float = 0.05,
    samples: int = 10000,
    seed: int = 0,
) -> NonInferiority:
    """Verdict of a one-sided problem-level paired percentile bootstrap at level α with the margin.

    Non-inferior when the (1 − α) lower bound of the change is above −margin; a drop is shown when the (1 − α)
    upper bound is below 0; neither is inconclusive.
    """
    if margin_pp <= 0:
        raise ValueError(f"the margin must be above 0 percentage points, got {margin_pp}")
    differences = np.asarray(var_rates, dtype=float) - np.asarray(base_rates, dtype=float)
    means = bootstrap_means(base_rates, var_rates, samples=samples, seed=seed) * 100
    lower, upper = (float(v) for v in np.percentile(means, [100 * alpha, 100 * (1 - alpha)]))
    non_inferior, dropped = lower > -margin_pp, upper < 0
    if non_inferior:
        verdict = NON_INFERIOR_WITH_DROP if dropped else NON_INFERIOR
    else:
        verdict = DROP if dropped else INCONCLUSIVE
    return NonInferiority(
        margin_pp=margin_pp,
        alpha=alpha,
        change_pp=float(differences.mean() * 100),
        lower_pp=lower,
        upper_pp=upper,
        p_noninferior=float(np.mean(means <= -margin_pp)),
        verdict=verdict,
    )


def rates(paired: Paired) -> tuple[list[float], list[float]]:
    """Per-problem pass rates (baseline, variant) of a paired comparison."""
    return (
        [sum(paired.baseline[p]) / len(paired.baseline[p]) for p in paired.problems],
        [sum(paired.variant[p]) / len(paired.variant[p]) for p in paired.problems],
    )


@dataclass(frozen=True)
class Assessment:
    """Non-inferiority verdict and the smallest drop the comparison could have detected."""

    noninferiority: NonInferiority
    detectable_drop_pp: float | None  # at one-sided α and power 0.8; None when no drop would be detected

    def to_dict(self) -> dict[str, Any]:
        return {"noninferiority": self.noninferiority.to_dict(), "detectable_drop_pp": self.detectable_drop_pp}


def could_detect(drop_pp: float | None) -> str:
    """The sentence the report and the gate print beside a comparison that shows no drop."""
    if drop_pp is None:
        return "this study could not detect any drop (too few problems or passes)"
    return f"this study could detect drops of ≥ {drop_pp:.1f} pp"


def assess(paired: Paired, *, margin_pp: float, alpha: float = 0.05, samples: int = 10000, seed: int = 0) -> Assessment:
    """The verdict within ``margin_pp`` and the minimum detectable drop of one paired comparison."""
    base, var = rates(paired)
    design = Design(tuple(base), len(base), min(len(paired.baseline[p]) for p in paired.problems))
    return Assessment(
        noninferiority(base, var, margin_pp=margin_pp, alpha=alpha, samples=samples, seed=seed),
        minimum_detectable_drop(design, alpha=alpha, seed=seed),
    )
