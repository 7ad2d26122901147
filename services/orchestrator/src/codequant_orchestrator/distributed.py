"""The distributed runner: the same stage requests as the embedded runner (``stages``), as Celery tasks.

Bookkeeping lives in the results store (jobs table with task ids), so an orchestrator killed at any
point and started again re-attaches to its in-flight tasks and skips stored work. A cancelled study withdraws
its tasks: queued ones leave their queues, running quantize and generate tasks are stopped where they run
(execute and report tasks are short and finish), and the runner raises StudyCancelled.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from codequant.celery_app import create_app
from codequant.payloads import ExecuteResult, GenerateResult, PrepareResult, ReportResult
from codequant.queues import TASK_NAMES
from codequant.store import Completion, Store, Variant
from codequant_orchestrator import bookkeeping, stages, verification
from codequant_orchestrator.cancellation import CancelCheck, StudyCancelled
from codequant_orchestrator.dispatch import Dispatcher
from codequant_orchestrator.plan import Plan, VariantPlan
from codequant_orchestrator.progress import StageProgress
from codequant_orchestrator.records import unexecuted, wanted_completion_keys

log = logging.getLogger(__name__)
#: Stages whose (long) tasks a cancel stops where they run; a quantization resumes from its checkpoint later.
STOPPED_WHEN_CANCELLED = frozenset({"quantize", "generate"})


class _VariantOnBenchmark:
    """The work of one variant on one benchmark: generate, then execute in chunks."""

    def __init__(self, variant: VariantPlan, benchmark: str) -> None:
        self.variant = variant
        self.benchmark = benchmark
        self.state = "waiting"  # waiting -> generating -> executing -> done | failed
        self.open_chunks: set[str] = set()


class DistributedRunner:
    """Drives a study through Celery workers until every variant is done or failed, then reports."""

    def __init__(
        self,
        plan: Plan,
        store: Store,
        progress: StageProgress,
        *,
        broker_url: str | None = None,
        poll_s: float = 0.5,
        reap_every_s: float = 10.0,
        execute_chunk: int = 16,
        device: str = "cuda",
    ) -> None:
        self.plan = plan
        self.store = store
        self.progress = progress
        self.dispatcher = Dispatcher(create_app(broker_url), store)
        self.poll_s = poll_s
        self.reap_every_s = reap_every_s
        self.execute_chunk = execute_chunk
        self.device = device
        self.variant_state: dict[str, str] = {}  # key -> new|quantizing|ready|failed
        self.model_paths: dict[str, str] = {}
        self.units = [_VariantOnBenchmark(v, b) for v in plan.variants for b in plan.benchmarks]
        self.failures: dict[str, str] = {}
        self.report_state = "waiting"
        self.check_cancelled = CancelCheck(store, plan.study.name)

    def run(self) -> dict[str, str]:
        """Run to completion; returns {variant label: error} for failed variants. Raises StudyCancelled when the
        study is cancelled meanwhile, after withdrawing its tasks."""
        last_reap = last_progress = time.monotonic()
        while self.report_state not in ("done", "failed"):
            if self.check_cancelled.cancelled():
                self.dispatcher.cancel(self.plan.study.name, stop_stages=STOPPED_WHEN_CANCELLED)
                self._show_progress()
                raise StudyCancelled(f"study {self.plan.study.name} was cancelled")
            for variant in self.plan.variants:
                self._advance_variant(variant)
            for unit in self.units:
                self._advance_unit(unit)
            self._advance_report()
            self.dispatcher.poll()
            if time.monotonic() - last_reap >= self.reap_every_s:
                self.dispatcher.reap()
                last_reap = time.monotonic()
            if time.monotonic() - last_progress >= 2.0:
                self._show_progress()
                last_progress = time.monotonic()
            time.sleep(self.poll_s)
        self._show_progress()
        return self.failures

    # -- quantize ---------------------------------------------------------------------------------------------
    def _advance_variant(self, variant: VariantPlan) -> None:
        if self.variant_state.get(variant.key, "new") != "new":
            return
        with self.store.session() as session:
            row = session.get(Variant, variant.key)
            ready = row is not None and row.status == "ready" and row.artifact_path
            path = row.artifact_path if ready else None
        if path:  # quantized before, maybe by another study: this study's job is done too
            bookkeeping.set_job(self.store, self.plan.job_key("quantize", variant), status="done")
            self.variant_state[variant.key], self.model_paths[variant.key] = "ready", path
            return
        self.variant_state[variant.key] = "quantizing"
        self.dispatcher.submit(
            self._job("quantize", variant),
            TASK_NAMES["quantize"],
            [stages.prepare_request(variant, self.device).model_dump(mode="json")],
            on_success=lambda value, v=variant: self._quantized(v, PrepareResult.model_validate(value)),
            on_failure=lambda error, v=variant: self._fail_variant(v, f"quantize: {error}", "quantize"),
        )

    def _quantized(self, variant: VariantPlan, result: PrepareResult) -> None:
        stages.record_prepared(self.store, self.plan, variant, result)
        bookkeeping.set_job(self.store, self.plan.job_key("quantize", variant), status="done", task_id=None)
        self.variant_state[variant.key], self.model_paths[variant.key] = "ready", result.artifact_path

    def _fail_variant(self, variant: VariantPlan, error: str, stage: str, benchmark: str | None = None) -> None:
        self.variant_state[variant.key] = "failed"
        self.failures[variant.label] = error
        bookkeeping.record_variant(self.store, variant, status="failed", error=error)
        bookkeeping.set_job(
            self.store, self.plan.job_key(stage, variant, benchmark), status="failed", error=error, task_id=None
        )
        for unit in self.units:
            if unit.variant.key == variant.key and unit.state != "done":
                unit.state = "failed"

    # -- generate and execute ---------------------------------------------------------------------------------
    def _advance_unit(self, unit: _VariantOnBenchmark) -> None:
        if unit.state == "waiting" and self.variant_state.get(unit.variant.key) == "ready":
            self._start_generation(unit)
        elif unit.state == "executing" and not unit.open_chunks:
            stages.export_results(self.store, self.plan, unit.variant, unit.benchmark)
            bookkeeping.set_job(self.store, self.plan.job_key("execute", unit.variant, unit.benchmark), status="done")
            unit.state = "done"

    def _start_generation(self, unit: _VariantOnBenchmark) -> None:
        keys = wanted_completion_keys(self.plan, unit.variant, unit.benchmark)
        if len(self.store.existing_keys(Completion, keys.values())) == len(keys):
            bookkeeping.set_job(self.store, self.plan.job_key("generate", unit.variant, unit.benchmark), status="done")
            self._start_execution(unit)
            return
        unit.state = "generating"
        request = stages.generate_request(
            self.plan, unit.variant, [unit.benchmark], self.model_paths[unit.variant.key], self.store.url
        )
        self.dispatcher.submit(
            self._job("generate", unit.variant, unit.benchmark),
            stages.generate_task_name(unit.variant),
            [request.model_dump(mode="json")],
            on_success=lambda value, u=unit: self._generated(u, GenerateResult.model_validate(value)),
            on_failure=lambda error, u=unit: self._fail_variant(
                u.variant, f"generate {u.benchmark}: {error}", "generate", u.benchmark
            ),
        )

    def _generated(self, unit: _VariantOnBenchmark, result: GenerateResult) -> None:
        job = self.plan.job_key("generate", unit.variant, unit.benchmark)
        bookkeeping.set_job(self.store, job, status="done", task_id=None)
        bookkeeping.record_environment(self.store, self.plan.study.name, job, "generate", result.environment)
        self._start_execution(unit)

    def _start_execution(self, unit: _VariantOnBenchmark) -> None:
        unit.state = "executing"
        keys = wanted_completion_keys(self.plan, unit.variant, unit.benchmark)
        todo = unexecuted(self.store, keys.values())
        if not todo:
            return
        for request in stages.execute_requests(self.plan, unit.variant, unit.benchmark, todo, self.execute_chunk):
            job = self._job("execute", unit.variant, unit.benchmark, stages.execute_chunk_suffix(request))
            unit.open_chunks.add(job["key"])
            self.dispatcher.submit(
                job,
                TASK_NAMES["execute"],
                [request.model_dump(mode="json")],
                on_success=lambda value, u=unit, k=job["key"]: self._executed(
                    u, k, ExecuteResult.model_validate(value)
                ),
                on_failure=lambda error, u=unit: self._fail_variant(
                    u.variant, f"execute {u.benchmark}: {error}", "execute", u.benchmark
                ),
            )

    def _executed(self, unit: _VariantOnBenchmark, job_key: str, result: ExecuteResult) -> None:
        stages.record_executed(self.store, result)
        try:
            verification.check_infrastructure(result, f"{unit.variant.label} on {unit.benchmark}")
        except verification.InfrastructureFailure as exc:  # never counted as the variant's failures
            self._fail_variant(unit.variant, str(exc), "execute", unit.benchmark)
            return
        bookkeeping.set_job(self.store, job_key, status="done", task_id=None)
        bookkeeping.record_environment(self.store, self.plan.study.name, job_key, "execute", result.environment)
        unit.open_chunks.discard(job_key)

    # -- report -----------------------------------------------------------------------------------------------
    def _advance_report(self) -> None:
        if self.report_state != "waiting" or any(u.state not in ("done", "failed") for u in self.units):
            return
        self.report_state = "running"
        self.dispatcher.submit(
            self._job("report"),
            TASK_NAMES["report"],
            [stages.report_request(self.plan, self.store.url).model_dump(mode="json")],
            on_success=lambda value: self._reported("done", None, ReportResult.model_validate(value)),
            on_failure=lambda error: self._reported("failed", error),
        )

    def _reported(self, status: str, error: str | None, result: ReportResult | None = None) -> None:
        job = self.plan.job_key("report")
        bookkeeping.set_job(self.store, job, status=status, error=error, task_id=None)
        if result is not None:
            bookkeeping.record_environment(self.store, self.plan.study.name, job, "report", result.environment)
        self.report_state = status
        if error:
            self.failures["report"] = error

    # -- helpers ----------------------------------------------------------------------------------------------
    def _job(
        self, stage: str, variant: VariantPlan | None = None, benchmark: str | None = None, suffix: str | None = None
    ) -> dict[str, Any]:
        key = self.plan.job_key(stage, variant, benchmark) + (f":{suffix}" if suffix else "")
        return {
            "key": key,
            "study_id": self.plan.study.name,
            "stage": stage,
            "variant_key": variant.key if variant else None,
            "benchmark": benchmark,
        }

    def _show_progress(self) -> None:
        for stage, counts in bookkeeping.stage_progress(self.store, self.plan).items():
            self.progress.update(stage, counts["done"])
