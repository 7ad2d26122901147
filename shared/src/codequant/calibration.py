"""Per-problem time limits calibrated on the reference solution's runtime measured on this executor, as EvalPlus
does: max(floor, factor x reference runtime). A problem without a measured reference keeps the study's timeout."""

from __future__ import annotations

from collections.abc import Mapping

from codequant.limits import MAX_TIMEOUT_S


def calibrated_timeout(reference_s: float | None, factor: float, floor_s: float, default_s: float) -> float:
    """The time limit of one problem: max(floor_s, factor x reference_s), or ``default_s`` without a reference
    runtime; rounded to milliseconds (it enters execution keys) and at most a day."""
    if reference_s is None:
        return default_s
    return round(min(MAX_TIMEOUT_S, max(floor_s, factor * reference_s)), 3)


def calibrated_timeouts(
    runtimes_s: Mapping[str, float], problems: list[str], factor: float, floor_s: float, default_s: float
) -> dict[str, float]:
    """Problem name -> its time limit, for every problem in ``problems``."""
    return {name: calibrated_timeout(runtimes_s.get(name), factor, floor_s, default_s) for name in problems}
