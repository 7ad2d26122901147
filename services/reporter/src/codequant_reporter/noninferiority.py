"""Is a variant's loss negligible? A one-sided paired t-test over per-problem pass rates against a margin in
percentage points — the test the minimum detectable drop is simulated with — and a verdict that never stops at "no
significant difference"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import t as student_t

from codequant_reporter.pairing import Paired
from codequant_reporter.power import Design, minimum_detectable_drop

#: Verdicts, from the gate's point of view: only the first two let a variant through.
NON_INFERIOR = "non-inferior"
NON_INFERIOR_WITH_DROP = "non-inferior (significant drop within the margin)"
DROP = "drop shown"
INCONCLUSIVE = "inconclusive"
UNINFORMATIVE = "uninformative: the baseline passes nothing"
PASSING = (NON_INFERIOR, NON_INFERIOR_WITH_DROP)


@dataclass(frozen=True)
class NonInferiority:
    """The verdict on one comparison: change and bounds in percentage points of pass@1 (variant − baseline)."""

    margin_pp: float
    alpha: float
    change_pp: float
    lower_pp: float  # one-sided (1 − α) lower bound of the change, at least −100
    upper_pp: float  # one-sided (1 − α) upper bound of the change, at most 100
    p_noninferior: float  # one-sided t-test p-value of H0: change <= −margin
    verdict: str

    @property
    def passes(self) -> bool:
        return self.verdict in PASSING

    def reason(self) -> str:
        """One line saying why, in the numbers of the verdict."""
        bounds = f"change {self.change_pp:+.1f} pp, one-sided {100 * (1 - self.alpha):g} % bounds "
        bounds += f"[{self.lower_pp:+.1f}, {self.upper_pp:+.1f}] pp, margin {self.margin_pp:g} pp"
        why = {
            NON_INFERIOR: ": the lower bound is above -margin",
            NON_INFERIOR_WITH_DROP: ": the drop is real but its lower bound is above -margin",
            DROP: ": the upper bound is below 0 and the lower bound reaches -margin",
            INCONCLUSIVE: ": the lower bound reaches -margin and the upper bound reaches 0: more problems or samples "
            "would decide",
            UNINFORMATIVE: ", so no drop can be seen whatever the variant does",
        }[self.verdict]
        return f"{self.verdict}{why} ({bounds})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passes": self.passes}


def noninferiority(
    base_rates: Sequence[float], var_rates: Sequence[float], *, margin_pp: float, alpha: float = 0.05
) -> NonInferiority:
    """Verdict of one-sided paired t-tests at level α over the per-problem pass-rate differences (variant −
    baseline): non-inferior when the (1 − α) lower bound of the mean change is above −margin (H0: change ≤
    −margin rejected); a drop is shown when the (1 − α) upper bound is below 0; neither is inconclusive. The
    problems are the units (their samples are not independent); with identical differences the bounds are the
    change itself. Where the baseline passes no sample of any problem no drop can be seen, whatever the variant
    does: the verdict is uninformative (never non-inferior). A difference of pass rates lies in [−100, 100] pp,
    so the bounds are clipped to that range (the t interval can reach past it with few problems and large
    changes); the margin is below 100 pp, so clipping changes no verdict."""
    if not 0 < margin_pp < 100:
        raise ValueError(f"the margin must be above 0 and below 100 percentage points, got {margin_pp}")
    differences = 100 * (np.asarray(var_rates, dtype=float) - np.asarray(base_rates, dtype=float))
    if differences.size < 2:
        raise ValueError("a paired t-test needs at least 2 problems")
    mean = float(differences.mean())
    se = float(differences.std(ddof=1)) / np.sqrt(differences.size)
    if se > 0:
        half = float(student_t.ppf(1 - alpha, differences.size - 1)) * se
        p_noninferior = float(student_t.sf((mean + margin_pp) / se, differences.size - 1))
    else:
        half, p_noninferior = 0.0, 0.0 if mean > -margin_pp else 1.0
    lower, upper = max(mean - half, -100.0), min(mean + half, 100.0)
    non_inferior, dropped = lower > -margin_pp, upper < 0
    if not np.any(np.asarray(base_rates, dtype=float) > 0):
        verdict = UNINFORMATIVE
    elif non_inferior:
        verdict = NON_INFERIOR_WITH_DROP if dropped else NON_INFERIOR
    else:
        verdict = DROP if dropped else INCONCLUSIVE
    return NonInferiority(
        margin_pp=margin_pp,
        alpha=alpha,
        change_pp=mean,
        lower_pp=lower,
        upper_pp=upper,
        p_noninferior=p_noninferior,
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


def assess(paired: Paired, *, margin_pp: float, alpha: float = 0.05, seed: int = 0) -> Assessment:
    """The verdict within ``margin_pp`` and the minimum detectable drop of one paired comparison."""
    base, var = rates(paired)
    design = Design(tuple(base), len(base), min(len(paired.baseline[p]) for p in paired.problems))
    return Assessment(
        noninferiority(base, var, margin_pp=margin_pp, alpha=alpha),
        minimum_detectable_drop(design, alpha=alpha, seed=seed),
    )
