"""The executor's side of a study's verdict checks, one request each (``codequant.payloads``): the reference
self-check of a benchmark, and the re-run of a sample of one variant's failures. The embedded runner calls these in
process; the distributed one sends the same requests to the `execute` queue, so both modes check verdicts alike."""

from __future__ import annotations

from typing import Any

from codequant.benchmarks.load import BenchmarkSet
from codequant.benchmarks.problem import Problem
from codequant.calibration import calibrated_timeouts
from codequant.limits import Limits
from codequant.payloads import FlakeRequest, SelfCheckRequest
from codequant_executor.api import execution_provenance, shared_pool
from codequant_executor.flakes import FlakeCheck, measure_flakes
from codequant_executor.self_check import self_check


def check_references(request: SelfCheckRequest, *, workers: int | None = None) -> dict[str, Any]:
    """The self-check's result as stored in the verifications table: the checks, the provenance of the verdicts,
    and with ``calibration`` each problem's limit (max(floor_s, factor x reference runtime))."""
    limits = Limits.from_dict(request.limits)
    bench = BenchmarkSet(request.benchmark, [Problem(**p) for p in request.problems], provenance="")
    check = self_check(bench, limits, workers=workers, rerun=request.rerun, max_runs=request.max_runs)
    result: dict[str, Any] = {
        **check.to_dict(),
        "provenance": execution_provenance(shared_pool(workers).sandbox.layers, limits),
        "calibration": request.calibration,
    }
    if request.calibration is not None:
        result["timeouts"] = calibrated_timeouts(
            check.runtimes_s,
            [p.name for p in bench.problems],
            request.calibration["factor"],
            request.calibration["floor_s"],
            limits.timeout_s,
        )
    return result


def check_flakes(request: FlakeRequest, *, workers: int | None = None) -> dict[str, Any]:
    """The flake check's result as stored in the verifications table (``reruns`` lists every sample's runs)."""
    limits = Limits.from_dict(request.limits)
    check = FlakeCheck(request.benchmark, request.language, request.variant, request.failures)
    measure_flakes(check, request.sampled, limits, max_runs=request.max_runs, workers=workers)
    return {
        **check.to_dict(),
        "policy": request.policy,
        "provenance": execution_provenance(shared_pool(workers).sandbox.layers, limits),
    }
