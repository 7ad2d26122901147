"""The distributed runner: the same stages as the embedded runner, as Celery tasks on the four queues.

Bookkeeping lives in the results store (jobs table with task ids), so an orchestrator killed at any
point and started again re-attaches to its in-flight tasks and skips stored work.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from codequant.celery_app import create_app
from codequant.jsonl import write_jsonl
from codequant.keys import stable_hash
from codequant.queues import TASK_NAMES
from codequant.store import Completion, Store, Variant
from codequant_orchestrator import book
from codequant_orchestrator.dispatch import Dispatcher
from codequant_orchestrator.plan import Plan, VariantPlan
from codequant_orchestrator.progress import StageProgress
from codequant_orchestrator.records import (
    execution_request,
    result_records,
    store_results,
    unexecuted,
    wanted_completion_keys,
)

log = logging.getLogger(__name__)


class _Unit:
    """One (variant, benchmark): generate, then execute in chunks."""

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
        self.units = [_Unit(v, b) for v in plan.variants for b in plan.benchmarks]
        self.failures: dict[str, str] = {}
        self.report_state = "waiting"

    def run(self) -> dict[str, str]:
        """Run to completion; returns {variant label: error} for failed variants."""
        last_reap = last_progress = time.monotonic()
        while self.report_state not in ("done", "failed"):
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
        if path:
            self.variant_state[variant.key], self.model_paths[variant.key] = "ready", path
            return
        self.variant_state[variant.key] = "quantizing"
        payload = {
            "model": variant.model.source(),
            "model_dtype": variant.model.dtype,
            "variant": variant.variant.method_config(),
            "out_dir": str(Path(variant.artifact_dir).resolve()),
            "device": self.device,
        }
        self.dispatcher.submit(
            self._job("quantize", variant),
            TASK_NAMES["quantize"],
            [payload],
            on_success=lambda result, v=variant: self._quantized(v, result),
            on_failure=lambda error, v=variant: self._fail_variant(v, f"quantize: {error}", "quantize"),
        )

    def _quantized(self, variant: VariantPlan, result: dict[str, Any]) -> None:
        book.record_variant(
            self.store,
            variant,
            status="ready",
            artifact_path=result["artifact_path"],
            footprint=result.get("footprint"),
            error=None,
        )
        book.set_job(self.store, self.plan.job_key("quantize", variant), status="done", task_id=None)
        self.variant_state[variant.key], self.model_paths[variant.key] = "ready", result["artifact_path"]

    def _fail_variant(self, variant: VariantPlan, error: str, stage: str, benchmark: str | None = None) -> None:
        self.variant_state[variant.key] = "failed"
        self.failures[variant.label] = error
        book.record_variant(self.store, variant, status="failed", error=error)
        book.set_job(
            self.store, self.plan.job_key(stage, variant, benchmark), status="failed", error=error, task_id=None
        )
        for unit in self.units:
            if unit.variant.key == variant.key and unit.state != "done":
                unit.state = "failed"

    # -- generate and execute ---------------------------------------------------------------------------------
    def _advance_unit(self, unit: _Unit) -> None:
        if unit.state == "waiting" and self.variant_state.get(unit.variant.key) == "ready":
            self._start_generation(unit)
        elif unit.state == "executing" and not unit.open_chunks:
            self._export(unit)
            book.set_job(self.store, self.plan.job_key("execute", unit.variant, unit.benchmark), status="done")
            unit.state = "done"

    def _start_generation(self, unit: _Unit) -> None:
        keys = wanted_completion_keys(self.plan, unit.variant, unit.benchmark)
        if len(self.store.existing_keys(Completion, keys.values())) == len(keys):
            book.set_job(self.store, self.plan.job_key("generate", unit.variant, unit.benchmark), status="done")
            self._start_execution(unit)
            return
        unit.state = "generating"
        endpoint = unit.variant.variant.endpoint
        sampling = self.plan.study.sampling
        payload = {
            "study_id": self.plan.study.name,
            "variant_key": unit.variant.key,
            "benchmark": next(b for b in self.plan.study.benchmarks if b.name == unit.benchmark).model_dump(
                mode="json"
            ),
            "endpoint": endpoint.model_dump(mode="json") if endpoint else None,
            "model": self.model_paths[unit.variant.key],
            "model_dtype": unit.variant.model.dtype,
            "sampling": {
                "n": sampling.n,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "max_new_tokens": self.plan.study.max_new_tokens(unit.benchmark),
                "seed": sampling.seed,
            },
            "store_url": self.store.url,
        }
        self.dispatcher.submit(
            self._job("generate", unit.variant, unit.benchmark),
            TASK_NAMES["generate"],
            [payload],
            on_success=lambda _result, u=unit: self._generated(u),
            on_failure=lambda error, u=unit: self._fail_variant(
                u.variant, f"generate {u.benchmark}: {error}", "generate", u.benchmark
            ),
        )

    def _generated(self, unit: _Unit) -> None:
        book.set_job(
            self.store, self.plan.job_key("generate", unit.variant, unit.benchmark), status="done", task_id=None
        )
        self._start_execution(unit)

    def _start_execution(self, unit: _Unit) -> None:
        unit.state = "executing"
        keys = wanted_completion_keys(self.plan, unit.variant, unit.benchmark)
        todo = unexecuted(self.store, keys.values())
        if not todo:
            return
        limits = self.plan.study.execution.limits().as_key()
        problems = self.plan.benchmarks[unit.benchmark].by_name()
        requests = [execution_request(c, problems[c.problem]) for c in todo]
        for start in range(0, len(requests), self.execute_chunk):
            chunk = requests[start : start + self.execute_chunk]
            suffix = stable_hash(sorted(r["completion_key"] for r in chunk))[:16]
            job = self._job("execute", unit.variant, unit.benchmark, suffix)
            unit.open_chunks.add(job["key"])
            self.dispatcher.submit(
                job,
                TASK_NAMES["execute"],
                [chunk, limits],
                on_success=lambda results, u=unit, k=job["key"]: self._executed(u, k, results),
                on_failure=lambda error, u=unit: self._fail_variant(
                    u.variant, f"execute {u.benchmark}: {error}", "execute", u.benchmark
                ),
            )

    def _executed(self, unit: _Unit, job_key: str, results: list[dict[str, Any]]) -> None:
        store_results(self.store, results)
        book.set_job(self.store, job_key, status="done", task_id=None)
        unit.open_chunks.discard(job_key)

    def _export(self, unit: _Unit) -> None:
        out = (
            self.plan.study.out_dir
            / "results"
            / unit.variant.model.name
            / unit.variant.variant.name
            / f"{unit.benchmark}.jsonl"
        )
        write_jsonl(out, result_records(self.store, self.plan, unit.variant, unit.benchmark))

    # -- report -----------------------------------------------------------------------------------------------
    def _advance_report(self) -> None:
        if self.report_state != "waiting" or any(u.state not in ("done", "failed") for u in self.units):
            return
        self.report_state = "running"
        out_dir = str((self.plan.study.out_dir / "report").resolve())
        self.dispatcher.submit(
            self._job("report"),
            TASK_NAMES["report"],
            [self.plan.study.name, self.store.url, out_dir, ["md", "html", "csv", "tex", "json"]],
            on_success=lambda _paths: self._reported("done", None),
            on_failure=lambda error: self._reported("failed", error),
        )

    def _reported(self, status: str, error: str | None) -> None:
        book.set_job(self.store, self.plan.job_key("report"), status=status, error=error, task_id=None)
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
        for stage, counts in book.stage_progress(self.store, self.plan).items():
            self.progress.update(stage, counts["done"])
