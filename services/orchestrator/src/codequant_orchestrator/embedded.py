"""The embedded runner: the whole study in this process (no Redis, no Docker), a process pool for execution.

It calls the same stage functions the Celery workers run, with the same requests (``stages``), so the two run
modes cannot drift apart. A cancelled study stops at the next unit: before each stage of each variant, between
execution chunks, and from the generate stage's progress callback (every few stored completions); a
quantization under way finishes first.
"""

from __future__ import annotations

import logging
from pathlib import Path

from codequant.errors import CodequantError
from codequant.store import Store, Variant
from codequant_orchestrator import bookkeeping, report_inputs, stages, verification
from codequant_orchestrator.agreement import check_study_variant
from codequant_orchestrator.cancellation import CancelCheck
from codequant_orchestrator.plan import Plan, VariantPlan
from codequant_orchestrator.progress import StageProgress
from codequant_orchestrator.records import unexecuted, wanted_completion_keys

log = logging.getLogger(__name__)
_EXECUTE_CHUNK = 256


class EmbeddedRunner:
    """Runs quantize -> generate -> execute per variant, then the report, skipping stored work."""

    def __init__(self, plan: Plan, store: Store, progress: StageProgress, *, device: str = "cpu") -> None:
        self.plan = plan
        self.store = store
        self.progress = progress
        self.device = device
        self.check_cancelled = CancelCheck(store, plan.study.name)
        #: benchmark -> problem -> calibrated timeout (``verification.self_checks``)
        self.timeouts: dict[str, dict[str, float]] = {}

    def run(self) -> dict[str, str]:
        """Run every stage; returns {variant label: error} for variants that failed (the others continue).
        Raises StudyCancelled when the study is cancelled meanwhile."""
        failures: dict[str, str] = {}
        self.check_cancelled()
        self.timeouts = verification.self_checks(self.plan, self.store)  # before the first execution
        for variant in self.plan.variants:
            try:
                self.check_cancelled()
                model_path = self.prepare(variant)
                self.check_cancelled()
                self.generate(variant, model_path)
                check_study_variant(self.plan, variant, model_path)
                for benchmark in self.plan.benchmarks:
                    self.check_cancelled()
                    self.execute(variant, benchmark)
            except verification.InfrastructureFailure:
                raise  # the executor, not the variant: the study stops
            except CodequantError as exc:
                failures[variant.label] = str(exc)
                bookkeeping.record_variant(self.store, variant, status="failed", error=str(exc))
                log.error("variant %s failed: %s", variant.label, exc)
        self.check_cancelled()
        self.report()
        return failures

    # -- quantize ---------------------------------------------------------------------------------------------
    def prepare(self, variant: VariantPlan) -> str:
        """Quantize the variant if needed (resumable) and record its footprint; return the folder to serve."""
        with self.store.session() as session:
            row = session.get(Variant, variant.key)
            ready = row is not None and row.status == "ready" and row.artifact_path and Path(row.artifact_path).exists()
            path = row.artifact_path if ready else None
        if path:  # quantized before, maybe by another study: this study's job is done too
            bookkeeping.set_job(self.store, self.plan.job_key("quantize", variant), status="done")
            self.progress.advance("quantize")
            return path
        from codequant_quantizer.stage import prepare_variant  # torch: imported only when there is work

        self.progress.detail("quantize", variant.label)
        with bookkeeping.running_job(self.store, self.plan.job_key("quantize", variant)):
            result = prepare_variant(
                stages.prepare_request(variant, self.device),
                detail=lambda text: self.progress.detail("quantize", f"{variant.label}: {text}"),
            )
            stages.record_prepared(self.store, self.plan, variant, result)
        self.progress.advance("quantize")
        self.progress.detail("quantize", "")
        return result.artifact_path

    # -- generate ---------------------------------------------------------------------------------------------
    def generate(self, variant: VariantPlan, model_path: str) -> None:
        """Sample every missing completion of the variant on every benchmark, serving it once for all of them."""
        from codequant_generator.stage import generate_variant

        request = stages.generate_request(self.plan, variant, list(self.plan.benchmarks), model_path, self.store.url)
        result = generate_variant(
            request,
            store=self.store,
            progress=self._generated,
            detail=lambda text: self.progress.detail("generate", f"{variant.label}: {text}"),
            job=lambda benchmark: bookkeeping.running_job(
                self.store, self.plan.job_key("generate", variant, benchmark)
            ),
        )
        for benchmark, generated in result.generated.items():
            job = self.plan.job_key("generate", variant, benchmark)
            if generated:
                bookkeeping.record_environment(self.store, self.plan.study.name, job, "generate", result.environment)
            else:  # everything was stored already
                bookkeeping.set_job(self.store, job, status="done")
        self.progress.detail("generate", "")

    def _generated(self, count: int) -> None:
        """``count`` more completions are stored; a cancelled study stops sampling here."""
        self.progress.advance("generate", count)
        self.check_cancelled()

    # -- execute ----------------------------------------------------------------------------------------------
    def execute(self, variant: VariantPlan, benchmark: str) -> None:
        """Run every stored, not yet executed completion (identical programs run once) and link the results."""
        from codequant_executor.api import execute_batch

        keys = wanted_completion_keys(self.plan, variant, benchmark)
        todo = unexecuted(self.store, keys.values())
        self.progress.advance("execute", len(keys) - len(todo))
        job = self.plan.job_key("execute", variant, benchmark)
        timeouts = self.timeouts.get(benchmark, {})
        if not todo:
            bookkeeping.set_job(self.store, job, status="done")
            verification.measure_variant_flakes(self.plan, self.store, variant, benchmark, timeouts)
            stages.export_results(self.store, self.plan, variant, benchmark)
            return
        self.progress.detail("execute", f"{variant.label} on {benchmark}")
        with bookkeeping.running_job(self.store, job):
            for request in stages.execute_requests(self.plan, variant, benchmark, todo, _EXECUTE_CHUNK, timeouts):
                self.check_cancelled()
                result = execute_batch(request, workers=self.plan.study.execution.workers, store=self.store)
                stages.record_executed(self.store, result)
                verification.check_infrastructure(result, f"{variant.label} on {benchmark}")
                bookkeeping.record_environment(self.store, self.plan.study.name, job, "execute", result.environment)
                self.progress.advance("execute", len(request.items))
        self.progress.detail("execute", "")
        verification.measure_variant_flakes(self.plan, self.store, variant, benchmark, timeouts)
        stages.export_results(self.store, self.plan, variant, benchmark)

    # -- report -----------------------------------------------------------------------------------------------
    def report(self) -> None:
        """Write the report, unless the one there was written from the same stored results (``report_inputs``)."""
        job = self.plan.job_key("report")
        request = stages.report_request(self.plan, self.store.url)
        digest = report_inputs.report_digest(self.store, self.plan, job, request.formats)
        if report_inputs.up_to_date(self.plan.study.out_dir, digest):
            bookkeeping.set_job(self.store, job, status="done")
            self.progress.advance("report")
            return
        from codequant_reporter.report import build_report

        with bookkeeping.running_job(self.store, job):
            result = build_report(request)
            bookkeeping.record_environment(self.store, self.plan.study.name, job, "report", result.environment)
        report_inputs.remember(self.plan.study.out_dir, digest, list(result.files.values()))
        self.progress.advance("report")
