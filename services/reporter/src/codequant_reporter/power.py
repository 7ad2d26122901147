"""Could the study have seen a drop? Minimum detectable drop by simulation at the problem level, and the plan
that answers how many problems or samples a margin needs.

Model: a study draws ``problems`` problems (resampled from the baseline's per-problem pass rates, the problem-level
bootstrap), each with true baseline rate p; the variant's true rate is p × (1 − δ / mean p), so its mean pass@1 is
δ lower and a problem that never passes cannot drop. Each side samples n completions per problem, each passing with
its side's rate;
a drop counts as detected when the one-sided paired t-test on the per-problem rate differences rejects at α (the
problem-level test, the simulation's fast stand-in for the bootstrap). The variant's samples reuse one set of uniform
draws for every δ (common random numbers), so power is monotone in δ and the minimum detectable drop is found by
bisection. Simulations: 2000, fewer for large designs (at most ``MAX_DRAWS`` uniform draws per side).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

SIMULATIONS = 2000
MAX_DRAWS = 20_000_000
TARGET_POWER = 0.8


@dataclass(frozen=True)
class Design:
    """What a study samples: how many problems, how many completions per problem, and their baseline rates."""

    rates: tuple[float, ...]  # the baseline's per-problem pass rates, resampled to ``problems``
    problems: int
    n: int


class _Simulation:
    """Fixed random draws for one design, so power(δ) is a deterministic, monotone function."""

    def __init__(self, design: Design, alpha: float, simulations: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        rates = np.asarray(design.rates, dtype=float)
        simulations = max(100, min(simulations, MAX_DRAWS // (design.problems * design.n)))
        self.p = rates[rng.integers(0, len(rates), size=(simulations, design.problems))].astype(np.float32)
        self.mean = float(rates.mean())
        self.n = design.n
        shape = (*self.p.shape, design.n)
        self.base = (rng.random(shape, dtype=np.float32) < self.p[..., None]).sum(axis=2)
        self.uniform = rng.random(shape, dtype=np.float32)
        self.critical = float(student_t.ppf(1 - alpha, design.problems - 1))

    def power(self, drop: float) -> float:
        """Share of simulated studies whose one-sided paired t-test detects a true mean drop of ``drop``."""
        q = np.clip(self.p * np.float32(1 - drop / self.mean), 0.0, 1.0)
        differences = ((self.uniform < q[..., None]).sum(axis=2) - self.base) / self.n
        mean = differences.mean(axis=1)
        sd = differences.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic = np.where(sd > 0, mean / (sd / np.sqrt(differences.shape[1])), np.where(mean < 0, -np.inf, 0))
        return float(np.mean(statistic < -self.critical))


def power(
    design: Design, drop_pp: float, *, alpha: float = 0.05, simulations: int = SIMULATIONS, seed: int = 0
) -> float:
    """Probability that a study of ``design`` detects a true mean pass@1 drop of ``drop_pp`` percentage points."""
    return _Simulation(design, alpha, simulations, seed).power(drop_pp / 100)


def minimum_detectable_drop(
    design: Design,
    *,
    alpha: float = 0.05,
    target: float = TARGET_POWER,
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> float | None:
    """Smallest true mean pass@1 drop, in percentage points (rounded up to 0.1 pp), that a study of ``design``
    detects with probability ``target`` at one-sided level ``alpha``; None when not even a drop to 0 would be (a
    baseline that never passes, or too few problems)."""
    if design.problems < 2 or design.n < 1 or not design.rates:
        return None
    simulation = _Simulation(design, alpha, simulations, seed)
    high = simulation.mean
    if high <= 0 or simulation.power(high) < target:
        return None
    low = 0.0
    while high - low > 0.0005:
        middle = (low + high) / 2
        if simulation.power(middle) >= target:
            high = middle
        else:
            low = middle
    return math.ceil(high * 1000 - 1e-9) / 10  # rounded up: power at the figure is still >= target


@dataclass(frozen=True)
class Plan:
    """How large a study must be for its minimum detectable drop to be at most the margin."""

    margin_pp: float
    current: Design
    current_drop_pp: float | None
    problems_needed: int | None  # with the current n; None when more than ``limit`` would not do
    n_needed: int | None  # with the current problems; None when more than ``limit`` would not do


def _smallest(fits, start: int, limit: int) -> int | None:
    """Smallest integer in [start, limit] for which ``fits`` holds (``fits`` monotone); None when none."""
    if fits(start):
        return start
    low, high = start, start
    while not fits(high):
        if high >= limit:
            return None
        low, high = high, min(2 * high, limit)
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle
    return high


def plan(
    rates: Sequence[float],
    n: int,
    margin_pp: float,
    *,
    problems: int | None = None,
    alpha: float = 0.05,
    target: float = TARGET_POWER,
    simulations: int = SIMULATIONS,
    seed: int = 0,
    limit: int = 4096,
) -> Plan:
    """Problems (at the current n) and samples per problem (at the current problems) for which a drop of
    ``margin_pp`` is detected with probability ``target`` — equally, for which a variant that loses nothing is shown
    non-inferior within the margin with that probability."""
    current = Design(tuple(rates), problems or len(rates), n)

    def fits(design: Design) -> bool:  # the minimum detectable drop is at most the margin
        if design.problems < 2 or margin_pp > 100 * float(np.mean(rates)):
            return False
        return power(design, margin_pp, alpha=alpha, simulations=simulations, seed=seed) >= target

    return Plan(
        margin_pp=margin_pp,
        current=current,
        current_drop_pp=minimum_detectable_drop(
            current, alpha=alpha, target=target, simulations=simulations, seed=seed
        ),
        problems_needed=_smallest(lambda p: fits(Design(current.rates, p, n)), 2, limit),
        n_needed=_smallest(lambda m: fits(Design(current.rates, current.problems, m)), 1, limit),
    )
