"""What both runners do around each stage: build its request from the plan, and record its result in the store.

The embedded runner passes the requests to the stage functions in process; the distributed runner sends the
same requests over Celery. Either way the stage functions (``prepare_variant``, ``generate_variant``,
``execute_batch``, ``build_report``) do the work, and the results land in the store through this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from sqlalchemy import update

from codequant.executions import INFRASTRUCTURE_STATUSES, store_executions
from codequant.jsonl import write_jsonl
from codequant.keys import stable_hash
from codequant.payloads import (
    ExecuteRequest,
    ExecuteResult,
    ExecutionItem,
    GenerateRequest,
    PrepareRequest,
    PrepareResult,
    ReportRequest,
)
from codequant.queues import GENERATE, GENERATE_REMOTE, TASK_NAMES
from codequant.store import Completion, Store
from codequant_orchestrator import bookkeeping
from codequant_orchestrator.plan import Plan, VariantPlan
from codequant_orchestrator.records import result_records

REPORT_FORMATS = ["md", "html", "csv", "tex", "json"]


# -- quantize -----------------------------------------------------------------------------------------------------
def prepare_request(variant: VariantPlan, device: str) -> PrepareRequest:
    return PrepareRequest(
        model=variant.model.source(),
        model_dtype=variant.model.dtype,
        variant=variant.variant.method_config(),
        out_dir=str(Path(variant.artifact_dir).resolve()),
        device=device,
    )


def record_prepared(store: Store, plan: Plan, variant: VariantPlan, result: PrepareResult) -> None:
    """The variant is ready: its folder, its footprint, and where it was prepared."""
    bookkeeping.record_variant(
        store, variant, status="ready", artifact_path=result.artifact_path, footprint=result.footprint, error=None
    )
    job = plan.job_key("quantize", variant)
    bookkeeping.record_environment(store, plan.study.name, job, "quantize", result.environment)


# -- generate -----------------------------------------------------------------------------------------------------
def generate_task_name(variant: VariantPlan) -> str:
    """Self-served variants need a worker with the model server; those behind an endpoint do not."""
    return TASK_NAMES[GENERATE_REMOTE if variant.variant.endpoint is not None else GENERATE]


def generate_request(plan: Plan, variant: VariantPlan, benchmarks: list[str], model_path: str, store_url: str):
    """Sample ``variant`` (served from ``model_path`` unless it names an endpoint) on ``benchmarks``."""
    return GenerateRequest(
        study_id=plan.study.name,
        variant_key=variant.key,
        benchmarks=[plan.study.benchmark(name) for name in benchmarks],
        sampling={name: plan.study.sampling_params(name) for name in benchmarks},
        endpoint=variant.variant.endpoint,
        model=model_path,
        model_dtype=variant.model.dtype,
        server=plan.study.serving.server if variant.variant.vllm_servable else "codequant",
        store_url=store_url,
    )


# -- execute ------------------------------------------------------------------------------------------------------
def execute_requests(
    plan: Plan,
    variant: VariantPlan,
    benchmark: str,
    todo: list[Completion],
    chunk: int,
    timeouts: Mapping[str, float] | None = None,
) -> Iterator[ExecuteRequest]:
    """The stored, unexecuted completions ``todo`` of one variant and benchmark, in chunks of ``chunk``; a problem
    in ``timeouts`` (calibrated limits) runs under its own timeout.

    An instruct-mode completion is already a program head (prompt included, ``codequant.extraction``): it runs
    with an empty prompt, so its program is ``head + "\n" + tests`` as a completion's is ``prompt + completion``."""
    limits = plan.study.execution.limits().as_key()
    problems = plan.benchmarks[benchmark].by_name()
    instruct = plan.study.benchmark(benchmark).prompt_mode == "instruct"
    items = [
        ExecutionItem(
            name=c.problem,
            language=problems[c.problem].language,
            prompt="" if instruct else problems[c.problem].prompt,
            completion=c.completion,
            tests=problems[c.problem].tests,
            completion_key=c.key,
            timeout_s=(timeouts or {}).get(c.problem),
        )
        for c in todo
    ]
    for start in range(0, len(items), chunk):
        yield ExecuteRequest(items=items[start : start + chunk], limits=limits)


def execute_chunk_suffix(request: ExecuteRequest) -> str:
    """What tells the distributed runner's execute chunks of one variant and benchmark apart in their job keys: a
    digest of the chunk's completion keys (so a restarted runner that cuts the same chunks finds their jobs)."""
    return stable_hash(sorted(item.completion_key for item in request.items))[:16]


def record_executed(store: Store, result: ExecuteResult) -> None:
    """Store the executions (the executions table's one writer in both run modes: ``store_executions``, idempotent
    by key) and link each completion to its execution."""
    store_executions(store, (o.model_dump() for o in result.outcomes))
    with store.session() as session:
        for o in result.outcomes:
            if o.status in INFRASTRUCTURE_STATUSES:  # not stored: the completion stays unexecuted
                continue
            session.execute(
                update(Completion).where(Completion.key == o.completion_key).values(execution_key=o.execution_key)
            )


def export_results(store: Store, plan: Plan, variant: VariantPlan, benchmark: str) -> Path:
    """Per-sample results as JSONL beside the store, for `codequant compare` and other tools."""
    out = plan.study.out_dir / "results" / variant.model.name / variant.variant.name / f"{benchmark}.jsonl"
    write_jsonl(out, result_records(store, plan, variant, benchmark))
    return out


# -- report -------------------------------------------------------------------------------------------------------
def report_request(plan: Plan, store_url: str) -> ReportRequest:
    return ReportRequest(
        study_id=plan.study.name,
        store_url=store_url,
        out_dir=str((plan.study.out_dir / "report").resolve()),
        formats=REPORT_FORMATS,
    )
