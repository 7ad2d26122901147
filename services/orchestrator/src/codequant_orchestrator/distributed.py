"""The distributed runner: the same stage requests as the embedded runner (``stages``), as Celery tasks.

Before any execution, every benchmark's reference self-check runs on the `execute` queue (its calibrated limits go
into the execution requests); after a variant's executions on a benchmark, a sample of its failures runs again
there (flakes), and with the study option ``serving.agreement`` each self-served variant's token comparison runs on
`generate` before its executions: the same checks as the embedded runner, from the same requests.

Bookkeeping lives in the results store (jobs table with task ids), so an orchestrator killed at any
point and started again re-attaches to its in-flight tasks and skips stored work. A cancelled study withdraws
its tasks: queued ones leave their queues, running quantize and generate tasks are stopped where they run
(execute and report tasks are short and finish), and the runner raises StudyCancelled.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from codequant.agreement import AgreementResult
from codequant.celery_app import create_app
from codequant.errors import ServiceError
from codequant.payloads import ExecuteResult, GenerateResult, PrepareResult, ReportResult
from codequant.queues import AGREEMENT_TASK, FLAKES_TASK, SELF_CHECK_TASK, TASK_NAMES
from codequant.store import Completion, Store, Variant
from codequant_orchestrator import agreement, bookkeeping, stages, verification
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
        self.state = "waiting"  # waiting -> generating -> generated -> executing -> checking -> done | failed
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
        #: the reference self-checks gate every execution: waiting -> running -> done
        self.self_check_state = "waiting"
        self.self_checks_left: set[str] = set()
        #: benchmark -> problem -> calibrated time limit (from the self-checks)
        self.timeouts: dict[str, dict[str, float]] = {}
        self.stop_error: str | None = None
        #: variants whose serving agreement checks were sent, and the (variant key, benchmark) checks still open
        self.agreement_sent: set[str] = set()
        self.agreement_open: set[tuple[str, str]] = set()

    def run(self) -> dict[str, str]:
        """Run to completion; returns {variant label: error} for failed variants. Raises StudyCancelled when the
        study is cancelled meanwhile, after withdrawing its tasks."""
        last_reap = last_progress = time.monotonic()
        while self.report_state not in ("done", "failed"):
            if self.check_cancelled.cancelled():
                self.dispatcher.cancel(self.plan.study.name, stop_stages=STOPPED_WHEN_CANCELLED)
                self._show_progress()
                raise StudyCancelled(f"study {self.plan.study.name} was cancelled")
            if self.stop_error is not None:
                raise verification.InfrastructureFailure(self.stop_error)
            self._advance_self_checks()
            for variant in self.plan.variants:
                self._advance_variant(variant)
                self._advance_agreement(variant)
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
        elif (
            unit.state == "generated"
            and self.self_check_state == "done"
            and not any(key == unit.variant.key for key, _ in self.agreement_open)
        ):
            self._start_execution(unit)
        elif unit.state == "executing" and not unit.open_chunks:
            self._check_flakes(unit)

    def _start_generation(self, unit: _VariantOnBenchmark) -> None:
        keys = wanted_completion_keys(self.plan, unit.variant, unit.benchmark)
        if len(self.store.existing_keys(Completion, keys.values())) == len(keys):
            bookkeeping.set_job(self.store, self.plan.job_key("generate", unit.variant, unit.benchmark), status="done")
            unit.state = "generated"
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
        if unit.state == "generating":
            unit.state = "generated"

    def _start_execution(self, unit: _VariantOnBenchmark) -> None:
        unit.state = "executing"
        keys = wanted_completion_keys(self.plan, unit.variant, unit.benchmark)
        todo = unexecuted(self.store, keys.values())
        if not todo:
            return
        timeouts = self.timeouts.get(unit.benchmark, {})
        for request in stages.execute_requests(
            self.plan, unit.variant, unit.benchmark, todo, self.execute_chunk, timeouts
        ):
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

    # -- serving agreement (study option serving.agreement) -----------------------------------------------------
    def _advance_agreement(self, variant: VariantPlan) -> None:
        """Once the variant is ready, send its token comparisons; its executions wait until they passed."""
        if variant.key in self.agreement_sent or self.variant_state.get(variant.key) != "ready":
            return
        self.agreement_sent.add(variant.key)
        for request in agreement.study_requests(self.plan, variant, self.model_paths[variant.key]):
            self.agreement_open.add((variant.key, request.benchmark))
            self.dispatcher.submit(
                self._job("generate", variant, request.benchmark, "agreement"),
                AGREEMENT_TASK,
                [request.model_dump(mode="json")],
                on_success=lambda value, v=variant: self._compared(v, AgreementResult.from_dict(value)),
                on_failure=lambda error, v=variant, b=request.benchmark: self._fail_variant(
                    v, f"serving agreement on {b}: {error}", "generate", b
                ),
            )

    def _compared(self, variant: VariantPlan, result: AgreementResult) -> None:
        """The comparison is back: run both sides' completions in the executor."""
        job = self.plan.job_key("generate", variant, result.benchmark) + ":agreement"
        bookkeeping.set_job(self.store, job, status="done", task_id=None)
        problems = self.plan.benchmarks[result.benchmark].by_name()
        request = agreement.execute_request(
            result, [problems[p.name] for p in result.problems], self.plan.study.execution.limits()
        )
        self.dispatcher.submit(
            self._job("execute", variant, result.benchmark, "agreement"),
            TASK_NAMES["execute"],
            [request.model_dump(mode="json")],
            on_success=lambda value, v=variant, r=result: self._agreement_executed(
                v, r, ExecuteResult.model_validate(value)
            ),
            on_failure=lambda error, v=variant, b=result.benchmark: self._fail_variant(
                v, f"serving agreement on {b}: {error}", "execute", b
            ),
        )

    def _agreement_executed(self, variant: VariantPlan, result: AgreementResult, executed: ExecuteResult) -> None:
        agreement.set_verdicts(result, executed)
        job = self.plan.job_key("execute", variant, result.benchmark) + ":agreement"
        try:
            agreement.finish_study_check(self.plan, variant, result)
        except ServiceError as exc:  # the server does not reproduce the weights: the variant fails unexecuted
            bookkeeping.set_job(self.store, job, status="failed", error=str(exc), task_id=None)
            self._fail_variant(variant, str(exc), "generate", result.benchmark)
            return
        bookkeeping.set_job(self.store, job, status="done", task_id=None)
        self.agreement_open.discard((variant.key, result.benchmark))

    # -- verdict checks (docs/executor.md, "Verdicts checked") --------------------------------------------------
    def _advance_self_checks(self) -> None:
        """Send every benchmark's reference self-check not stored yet; executions wait for all of them."""
        if self.self_check_state != "waiting":
            return
        self.self_check_state = "running"
        if self.plan.study.execution.self_check:
            for name in self.plan.benchmarks:
                key, request = verification.self_check_request(self.plan, name)
                stored = verification.stored_self_check(self.store, key)
                if stored is not None:
                    self.timeouts[name] = stored
                    continue
                self.self_checks_left.add(name)
                self.dispatcher.submit(
                    self._job("execute", None, name, "self-check"),
                    SELF_CHECK_TASK,
                    [request.model_dump(mode="json")],
                    on_success=lambda value, n=name, k=key: self._self_checked(n, k, value),
                    on_failure=lambda error, n=name: self._self_check_failed(n, error),
                )
        if not self.self_checks_left:
            self.self_check_state = "done"

    def _self_checked(self, name: str, key: str, result: dict[str, Any]) -> None:
        self.timeouts[name] = verification.keep_self_check(self.store, self.plan, key, name, result)
        job = self.plan.job_key("execute", None, name) + ":self-check"
        bookkeeping.set_job(self.store, job, status="done", task_id=None)
        self.self_checks_left.discard(name)
        if not self.self_checks_left:
            self.self_check_state = "done"

    def _self_check_failed(self, name: str, error: str) -> None:
        """The executor could not check the references: nothing can be executed, the study stops."""
        job = self.plan.job_key("execute", None, name) + ":self-check"
        bookkeeping.set_job(self.store, job, status="failed", error=error, task_id=None)
        self.stop_error = f"the reference self-check of {name} failed in the executor: {error}"

    def _check_flakes(self, unit: _VariantOnBenchmark) -> None:
        """Send the re-run of a sample of the unit's failures (once per study), then finish the unit."""
        timeouts = self.timeouts.get(unit.benchmark, {})
        found = verification.flake_request(self.plan, self.store, unit.variant, unit.benchmark, timeouts)
        if found is None:
            self._finish_unit(unit)
            return
        key, request = found
        unit.state = "checking"
        self.dispatcher.submit(
            self._job("execute", unit.variant, unit.benchmark, "flakes"),
            FLAKES_TASK,
            [request.model_dump(mode="json")],
            on_success=lambda value, u=unit, k=key: self._flakes_checked(u, k, value),
            on_failure=lambda error, u=unit: self._fail_variant(
                u.variant, f"flake check {u.benchmark}: {error}", "execute", u.benchmark
            ),
        )

    def _flakes_checked(self, unit: _VariantOnBenchmark, key: str, result: dict[str, Any]) -> None:
        verification.keep_flakes(self.store, self.plan, unit.variant, unit.benchmark, key, result)
        job = self.plan.job_key("execute", unit.variant, unit.benchmark) + ":flakes"
        bookkeeping.set_job(self.store, job, status="done", task_id=None)
        self._finish_unit(unit)

    def _finish_unit(self, unit: _VariantOnBenchmark) -> None:
        stages.export_results(self.store, self.plan, unit.variant, unit.benchmark)
        bookkeeping.set_job(self.store, self.plan.job_key("execute", unit.variant, unit.benchmark), status="done")
        unit.state = "done"

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
