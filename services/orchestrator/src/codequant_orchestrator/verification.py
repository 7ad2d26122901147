"""The checks of a study's verdicts (docs/executor.md, "Verdicts checked"): the reference self-check before the first
execution, calibrated per-problem limits, the re-run of a sample of each variant's failures, and the stop when the
executor itself keeps failing. Results land in the store's ``verifications`` table; the reporter reads them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import select, update

from codequant.errors import ServiceError
from codequant.executions import INFRASTRUCTURE_STATUSES
from codequant.keys import stable_hash
from codequant.payloads import ExecuteResult, FlakeRequest, SelfCheckRequest
from codequant.reruns import Rerun, sample_failures
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


def self_check_request(plan: Plan, name: str) -> tuple[str, SelfCheckRequest]:
    """The stored key and the request of benchmark ``name``'s reference self-check (the key covers the limits,
    the calibration, the references and the flake policy, so a changed one is checked again)."""
    execution = plan.study.execution
    bench = plan.benchmarks[name]
    limits = execution.limits()
    references = sorted((p.name, p.prompt, p.canonical_solution or "", p.tests) for p in bench.problems)
    calibration = execution.calibration.model_dump() if execution.calibration else None
    flakes = execution.flakes
    settle = flakes.policy == "rerun"
    key = stable_hash(
        ["self-check", plan.study.name, name, limits.as_key(), calibration, references, settle, flakes.max_runs]
    )[:40]
    request = SelfCheckRequest(
        benchmark=name,
        problems=[asdict(p) for p in bench.problems],
        limits=limits.as_key(),
        rerun=settle,
        max_runs=flakes.max_runs,
        calibration=calibration,
    )
    return key, request


def stored_self_check(store: Store, key: str) -> dict[str, float] | None:
    """A stored self-check's per-problem calibrated limits (empty without calibration); None: not run yet."""
    result = _stored(store, key)
    return None if result is None else dict(result.get("timeouts", {}))


def keep_self_check(store: Store, plan: Plan, key: str, name: str, result: dict[str, Any]) -> dict[str, float]:
    """Store a self-check's result; returns its per-problem calibrated limits (empty without calibration)."""
    _keep(store, plan, key, "self-check", name, result)
    return dict(result.get("timeouts", {}))


def self_checks(plan: Plan, store: Store) -> dict[str, dict[str, float]]:
    """Run here (or find stored) every benchmark's reference self-check; returns benchmark -> problem ->
    calibrated timeout (empty without ``execution.calibration``)."""
    from codequant_executor.verdict_checks import check_references

    if not plan.study.execution.self_check:
        return {}
    timeouts: dict[str, dict[str, float]] = {}
    for name in plan.benchmarks:
        key, request = self_check_request(plan, name)
        stored = stored_self_check(store, key)
        if stored is None:
            stored = keep_self_check(
                store, plan, key, name, check_references(request, workers=plan.study.execution.workers)
            )
        timeouts[name] = stored
    return timeouts


def flake_request(
    plan: Plan, store: Store, variant: VariantPlan, benchmark: str, timeouts: dict[str, float]
) -> tuple[str, FlakeRequest] | None:
    """The stored key and the request of the re-run of a seeded sample of the variant's failed samples on
    ``benchmark``; None when the study samples none or it ran already (once per study: stored)."""
    execution = plan.study.execution
    flakes = execution.flakes
    key = stable_hash(["flakes", plan.study.name, variant.key, benchmark, flakes.model_dump(), timeouts])[:40]
    if flakes.sample <= 0 or _stored(store, key) is not None:
        return None
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
    request = FlakeRequest(
        benchmark=benchmark,
        language=bench.problems[0].language if bench.problems else "",
        variant=variant.label,
        failures=sum(r["status"] != "OK" for r in results),
        sampled=sample_failures(results, flakes.sample, flakes.seed),
        limits=execution.limits().as_key(),
        max_runs=flakes.max_runs if flakes.policy == "rerun" else 2,
        policy=flakes.policy,
    )
    return key, request


def keep_flakes(
    store: Store, plan: Plan, variant: VariantPlan, benchmark: str, key: str, result: dict[str, Any]
) -> None:
    """Store a flake check's result; with ``policy: rerun``, a sample that settled on another verdict than the
    stored one replaces it first."""
    if result["policy"] == "rerun":
        _settle(store, variant, result["reruns"], wanted_completion_keys(plan, variant, benchmark))
    _keep(store, plan, key, "flakes", benchmark, result, variant.key)


def measure_variant_flakes(plan: Plan, store: Store, variant: VariantPlan, benchmark: str, timeouts: dict) -> None:
    """Re-run here a seeded sample of the variant's failed samples on ``benchmark`` (``flake_request``)."""
    from codequant_executor.verdict_checks import check_flakes

    found = flake_request(plan, store, variant, benchmark, timeouts)
    if found is not None:
        key, request = found
        keep_flakes(store, plan, variant, benchmark, key, check_flakes(request, workers=plan.study.execution.workers))


def _settle(store: Store, variant: VariantPlan, reruns: list[dict[str, Any]], wanted: dict) -> None:
    """Store the settled verdict of each flipped sample whose last two runs agree on another verdict."""
    from codequant.store import Completion

    for found in reruns:
        rerun = Rerun(found["name"], found["sample"], tuple(found["statuses"]))
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
