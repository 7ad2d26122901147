"""The embedded runner: the whole study in this process (no Redis, no Docker), a process pool for execution."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codequant.errors import CodequantError
from codequant.jsonl import write_jsonl
from codequant.model_source import resolve_model
from codequant.store import Completion, Store, Variant
from codequant_orchestrator import book
from codequant_orchestrator.plan import Plan, VariantPlan
from codequant_orchestrator.progress import StageProgress
from codequant_orchestrator.records import (
    completion_row,
    execution_request,
    result_records,
    store_results,
    unexecuted,
    wanted_completion_keys,
)

log = logging.getLogger(__name__)
_FLUSH_EVERY = 32
_EXECUTE_CHUNK = 256


class EmbeddedRunner:
    """Runs quantize -> generate -> execute per variant, then the report, skipping stored work."""

    def __init__(self, plan: Plan, store: Store, progress: StageProgress, *, device: str = "cpu") -> None:
        self.plan = plan
        self.store = store
        self.progress = progress
        self.device = device

    def run(self) -> dict[str, str]:
        """Run every stage; returns {variant label: error} for variants that failed (the others continue)."""
        failures: dict[str, str] = {}
        for variant in self.plan.variants:
            try:
                model_path = self.prepare(variant)
                self.generate(variant, model_path)
                for benchmark in self.plan.benchmarks:
                    self.execute(variant, benchmark)
            except CodequantError as exc:
                failures[variant.label] = str(exc)
                book.record_variant(self.store, variant, status="failed", error=str(exc))
                log.error("variant %s failed: %s", variant.label, exc)
        self.report()
        return failures

    # -- quantize ---------------------------------------------------------------------------------------------
    def prepare(self, variant: VariantPlan) -> str:
        """Quantize the variant if needed (resumable) and record its footprint; return the folder to serve."""
        key = self.plan.job_key("quantize", variant)
        with self.store.session() as session:
            row = session.get(Variant, variant.key)
            if row is not None and row.status == "ready" and row.artifact_path and Path(row.artifact_path).exists():
                self.progress.advance("quantize")
                return row.artifact_path
        self.progress.detail("quantize", variant.label)
        with book.running_job(self.store, key):
            base = resolve_model(
                variant.model.source(),
                progress=lambda done, total: self.progress.detail(
                    "quantize", f"{variant.model.name}: training the tiny model, step {done}/{total}"
                ),
            )
            self.progress.detail("quantize", f"{variant.label} ({variant.variant.method})")
            from codequant_quantizer.api import footprint, quantize

            if variant.needs_quantization:
                path = str(
                    quantize(
                        base,
                        variant.variant.method_config(),
                        variant.artifact_dir,
                        dtype=variant.model.dtype,
                        device=self.device,
                        progress=False,
                    )
                )
            else:
                path = base
            size = footprint(Path(path)) if Path(path).is_dir() else None
            book.record_variant(self.store, variant, status="ready", artifact_path=path, footprint=size, error=None)
        self.progress.advance("quantize")
        self.progress.detail("quantize", "")
        return path

    # -- generate ---------------------------------------------------------------------------------------------
    def generate(self, variant: VariantPlan, model_path: str) -> None:
        """Sample every missing completion of the variant on every benchmark, serving it once for all of them."""
        pending: dict[str, dict[tuple[str, int], str]] = {}
        for benchmark in self.plan.benchmarks:
            keys = wanted_completion_keys(self.plan, variant, benchmark)
            stored = self.store.existing_keys(Completion, keys.values())
            self.progress.advance("generate", len(stored))
            missing = {pair: key for pair, key in keys.items() if key not in stored}
            if missing:
                pending[benchmark] = missing
            else:
                book.set_job(self.store, self.plan.job_key("generate", variant, benchmark), status="done")
        if not pending:
            return
        self.progress.detail("generate", f"{variant.label}: starting its server")
        with self._endpoint(variant, model_path) as endpoint:
            for benchmark, missing in pending.items():
                self.progress.detail("generate", f"{variant.label} on {benchmark}")
                with book.running_job(self.store, self.plan.job_key("generate", variant, benchmark)):
                    self._generate_benchmark(variant, benchmark, missing, endpoint)

    @contextlib.contextmanager
    def _endpoint(self, variant: VariantPlan, model_path: str) -> Iterator[Any]:
        from codequant_generator.api import Endpoint

        external = variant.variant.endpoint
        if external is not None:
            yield Endpoint(**external.model_dump(mode="json"))
            return
        from codequant_serving.launch import running_server

        dtype = variant.model.dtype
        with running_server(model_path, dtype=dtype) as url:
            yield Endpoint(url=url, api="openai")

    def _generate_benchmark(
        self, variant: VariantPlan, benchmark: str, missing: dict[tuple[str, int], str], endpoint: Any
    ) -> None:
        from codequant_generator.api import generate_completions

        sampling = self.plan.study.sampling
        wanted_problems = {name for name, _ in missing}
        problems = [p for p in self.plan.benchmarks[benchmark].problems if p.name in wanted_problems]
        buffer: list[dict[str, Any]] = []

        def flush() -> None:
            self.store.insert_ignore(Completion, buffer)
            self.progress.advance("generate", len(buffer))
            buffer.clear()

        def on_record(record: dict[str, Any]) -> None:
            key = missing.get((record["name"], record["sample"]))
            if key is None:
                return
            buffer.append(completion_row(variant, key, {**record, "benchmark": benchmark}))
            if len(buffer) >= _FLUSH_EVERY:
                flush()

        generate_completions(
            problems,
            endpoint,
            n=sampling.n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_new_tokens=self.plan.study.max_new_tokens(benchmark),
            seed=sampling.seed,
            skip=lambda name, sample: (name, sample) not in missing,
            on_record=on_record,
        )
        flush()
        self.progress.detail("generate", "")

    # -- execute ----------------------------------------------------------------------------------------------
    def execute(self, variant: VariantPlan, benchmark: str) -> None:
        """Run every stored, not yet executed completion (identical programs run once) and link the results."""
        from codequant_executor.api import execute_records

        keys = wanted_completion_keys(self.plan, variant, benchmark)
        todo = unexecuted(self.store, keys.values())
        self.progress.advance("execute", len(keys) - len(todo))
        job = self.plan.job_key("execute", variant, benchmark)
        if not todo:
            book.set_job(self.store, job, status="done")
            self._export(variant, benchmark)
            return
        limits = self.plan.study.execution.limits()
        problems = self.plan.benchmarks[benchmark].by_name()
        self.progress.detail("execute", f"{variant.label} on {benchmark}")
        with book.running_job(self.store, job):
            for start in range(0, len(todo), _EXECUTE_CHUNK):
                chunk = [execution_request(c, problems[c.problem]) for c in todo[start : start + _EXECUTE_CHUNK]]
                results = execute_records(chunk, limits, workers=self.plan.study.execution.workers, store=self.store)
                store_results(self.store, results)
                self.progress.advance("execute", len(chunk))
        self.progress.detail("execute", "")
        self._export(variant, benchmark)

    def _export(self, variant: VariantPlan, benchmark: str) -> None:
        """Per-sample results as JSONL beside the store, for `codequant compare` and other tools."""
        out = self.plan.study.out_dir / "results" / variant.model.name / variant.variant.name / f"{benchmark}.jsonl"
        write_jsonl(out, result_records(self.store, self.plan, variant, benchmark))

    # -- report -----------------------------------------------------------------------------------------------
    def report(self) -> None:
        from codequant_reporter.report import build_report

        with book.running_job(self.store, self.plan.job_key("report")):
            build_report(self.plan.study.name, self.plan.study.out_dir / "report", store_url=self.store.url)
        self.progress.advance("report")
