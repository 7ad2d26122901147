"""The checks of a study's verdicts (docs/executor.md, "Verdicts checked"): the reference self-check before the first
execution, calibrated per-problem limits, the re-run of a sample of each variant's failures, and the stop when the
executor itself keeps failing. Results land in the store's ``verifications`` table; the reporter reads them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from codequant.calibration import calibrated_timeouts
from codequant.errors import ServiceError
from codequant.executions import INFRASTRUCTURE_STATUSES
from codequant.keys import stable_hash
from codequant.payloads import ExecuteResult
from codequant.results import sample_results
from codequant.store import Execution, Store, Verification
from codequant_orchestrator.plan import Plan, VariantPlan
from codequant_orchestrator.records import wanted_completion_keys


class InfrastructureFailure(ServiceError):
    """The executor failed on a program even after retries: the study stops (never a verdict on the model)."""


def check_infrastructure(result: ExecuteResult, where: str) -> None:
    """InfrastructureFailure naming ``where`` and the first program when any outcome is the executor's fault."""
    failed = [o for o in result.outcomes if o.status in INFRASTRUCTURE_STATUSES]
    if failed:
        first = failed[0]
        detail = first.stderr.strip().splitlines()[-1] if first.stderr.strip() else first.status
        raise InfrastructureFailure(
            f"{where}: the executor failed on {len(failed)} program(s) after retries (first: completion "
            f"{first.completion_key[:12]}: {detail}); the study stops: fix the executor and run it again"
        )


def _stored(store: Store, key: str) -> dict[str, Any] | None:
    with store.session() as session:
        row = session.get(Verification, key)
        return dict(row.result) if row is not None else None


def _keep(
    store: Store, plan: Plan, key: str, kind: str, benchmark: str, result: dict[str, Any], variant: str | None = None
) -> None:
    store.insert_ignore(
        Verification,
        [
            {
                "key": key,
                "study_id": plan.study.name,
                "kind": kind,
                "benchmark": benchmark,
                "variant_key": variant,
                "result": result,
            }
        ],
    )


def self_checks(plan: Plan, store: Store) -> dict[str, dict[str, float]]:
    """Run (or find stored) every benchmark's reference self-check; returns benchmark -> problem -> calibrated
    timeout (empty without ``execution.calibration``)."""
    from codequant_executor.api import execution_provenance, shared_pool
    from codequant_executor.self_check import self_check

    execution = plan.study.execution
    if not execution.self_check:
        return {}
    limits = execution.limits()
    timeouts: dict[str, dict[str, float]] = {}
    for name, bench in plan.benchmarks.items():
        references = sorted((p.name, p.prompt, p.canonical_solution or "", p.tests) for p in bench.problems)
        calibration = execution.calibration.model_dump() if execution.calibration else None
        flakes = execution.flakes
        settle = flakes.policy == "rerun"
        key = stable_hash(
            ["self-check", plan.study.name, name, limits.as_key(), calibration, references, settle, flakes.max_runs]
        )[:40]
        result = _stored(store, key)
        if result is None:
            check = self_check(bench, limits, workers=execution.workers, rerun=settle, max_runs=flakes.max_runs)
            result = {
                **check.to_dict(),
                "provenance": execution_provenance(shared_pool().sandbox.layers, limits),
                "calibration": calibration,
            }
            if execution.calibration is not None:
                result["timeouts"] = calibrated_timeouts(
                    check.runtimes_s,
                    [p.name for p in bench.problems],
                    execution.calibration.factor,
                    execution.calibration.floor_s,
                    limits.timeout_s,
                )
            _keep(store, plan, key, "self-check", name, result)
        timeouts[name] = result.get("timeouts", {})
    return timeouts


def measure_variant_flakes(plan: Plan, store: Store, variant: VariantPlan, benchmark: str, timeouts: dict) -> None:
    """Re-run a seeded sample of the variant's failed samples on ``benchmark`` (once per study: stored); with
    ``policy: rerun``, a sample that settles on another verdict than the stored one replaces it."""
    from codequant_executor.api import execution_provenance, shared_pool
    from codequant_executor.flakes import FlakeCheck, measure_flakes, sample_failures

    execution = plan.study.execution
    flakes = execution.flakes
    key = stable_hash(["flakes", plan.study.name, variant.key, benchmark, flakes.model_dump(), timeouts])[:40]
    if flakes.sample <= 0 or _stored(store, key) is not None:
        return
    bench = plan.benchmarks[benchmark]
    problems = bench.by_name()
    instruct = plan.study.benchmark(benchmark).prompt_mode == "instruct"
    wanted = wanted_completion_keys(plan, variant, benchmark)
    results = [
        {
            "name": name,
            "sample": sample,
            "status": r["status"],
            "language": problems[name].language,
            "prompt": "" if instruct else problems[name].prompt,
            "completion": r["completion"],
            "tests": problems[name].tests,
            **({"timeout_s": timeouts[name]} if name in timeouts else {}),
        }
        for (name, sample), r in sorted(sample_results(store, wanted).items())
        if r["status"] is not None
    ]
    language = bench.problems[0].language if bench.problems else ""
    check = FlakeCheck(benchmark, language, variant.label, sum(r["status"] != "OK" for r in results))
    sampled = sample_failures(results, flakes.sample, flakes.seed)
    max_runs = flakes.max_runs if flakes.policy == "rerun" else 2
    measure_flakes(check, sampled, execution.limits(), max_runs=max_runs, workers=execution.workers)
    if flakes.policy == "rerun":
        _settle(store, plan, variant, benchmark, check, wanted)
    result = {
        **check.to_dict(),
        "policy": flakes.policy,
        "provenance": execution_provenance(shared_pool().sandbox.layers, execution.limits()),
    }
    _keep(store, plan, key, "flakes", benchmark, result, variant.key)


def _settle(store: Store, plan: Plan, variant: VariantPlan, benchmark: str, check: Any, wanted: dict) -> None:
    """Store the settled verdict of each flipped sample whose last two runs agree on another verdict."""
    from codequant.store import Completion

    for rerun in check.reruns:
        if not (rerun.flipped and rerun.settled):
            continue
        status = rerun.statuses[-1]
        with store.session() as session:
            execution_key = session.scalar(
                select(Completion.execution_key).where(Completion.key == wanted[(rerun.name, rerun.sample)])
            )
            session.execute(
                update(Execution).where(Execution.key == execution_key).values(status=status, passed=status == "OK")
            )
