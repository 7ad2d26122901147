"""Everything a study's report needs, read from the results store."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from codequant.benchmarks import BenchmarkSet, benchmark_info
from codequant.errors import InputError
from codequant.results import completion_keys, sample_results
from codequant.store import Job, JobEnvironment, ServingMeasurement, Store, StudyVariant, Variant
from codequant.store import Study as StudyRow
from codequant.study import Study, parse_study
from codequant.study.methods import VariantModel
from codequant.verdict_checks import VerdictChecks, load_verdict_checks
from codequant_reporter.verdict_checks import apply_exclusions


@dataclass
class VariantData:
    """One variant as the tables show it; what its method means comes from its variant model."""

    key: str
    model: str
    spec: VariantModel
    footprint: dict[str, Any] | None
    status: str
    error: str | None
    dtype: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def method(self) -> str:
        return self.spec.method

    @property
    def config(self) -> dict[str, Any]:
        return self.spec.method_config()

    @property
    def is_baseline(self) -> bool:
        return self.spec.method == "baseline"

    @property
    def size_bytes(self) -> int | None:
        return int(self.footprint["total_bytes"]) if self.footprint else None

    @property
    def bits(self) -> float | None:
        """Nominal bits per weight of the quantized layers (the dtype's for the baseline)."""
        return self.spec.bits_per_weight(self.dtype, self.footprint)

    @property
    def precision(self) -> str:
        """The Precision column, e.g. ``fp16``, ``2-bit AQLM 1x15``, ``4-bit RTN g128``."""
        return self.spec.precision_label(self.dtype, self.footprint)

    @property
    def calibration(self) -> str | None:
        return self.spec.calibration_set

    @property
    def finetuned(self) -> bool:
        return self.spec.finetuned

    def setting(self) -> tuple:
        """What makes two variants the same quantization except for the calibration set."""
        return (self.method, *sorted((k, str(v)) for k, v in self.config.items() if k != "calibration"))


@dataclass
class ModelData:
    name: str
    params: str | None
    num_parameters: int | None
    variants: list[VariantData]

    @property
    def baseline(self) -> VariantData:
        return next(v for v in self.variants if v.is_baseline)

    @property
    def params_label(self) -> str:
        if self.params:
            return self.params
        if not self.num_parameters:
            return "?"
        for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if self.num_parameters >= scale:
                return f"{self.num_parameters / scale:.3g}{suffix}"
        return str(self.num_parameters)


@dataclass
class StudyData:
    """A study's spec, variants, benchmarks, per-sample outcomes and timings."""

    study: Study
    models: list[ModelData]
    benchmarks: dict[str, BenchmarkSet]
    # (variant key, benchmark) -> problem -> sample -> passed
    outcomes: dict[tuple[str, str], dict[str, dict[int, bool]]]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    variant_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    #: stage -> the distinct environments (software and hardware) its jobs ran on, as the workers recorded them
    environments: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    #: variant key -> what serving it cost (the ``serving_measurements`` row as a dict); absent when not measured
    serving: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the self-check, calibrated limits, flakes and provenance (``verdict_checks``)
    verdict_checks: VerdictChecks = field(default_factory=VerdictChecks)

    def usable(self, variant: VariantData) -> bool:
        return variant.status != "failed"


def load_study_data(store: Store, study_id: str) -> StudyData:
    """Read a study from the store; InputError when samples are missing or not executed yet."""
    with store.session() as session:
        row = session.get(StudyRow, study_id)
        if row is None:
            raise InputError(f"no study {study_id!r} in {store.safe_url}")
        study = parse_study(row.spec_yaml, source=f"study {study_id} (stored spec)")
        keys = set(session.scalars(select(StudyVariant.variant_key).where(StudyVariant.study_id == study_id)))
        rows = {v.key: v for v in session.scalars(select(Variant).where(Variant.key.in_(keys)))}
        jobs = list(session.scalars(select(Job).where(Job.study_id == study_id)))
        recorded = list(session.scalars(select(JobEnvironment).where(JobEnvironment.study_id == study_id)))
        measured = session.scalars(select(ServingMeasurement).where(ServingMeasurement.variant_key.in_(keys)))
        serving = {m.variant_key: {c.key: getattr(m, c.key) for c in m.__table__.columns} for m in measured}
    benchmarks = {spec.name: spec.load() for spec in study.benchmarks}
    verdict_checks = load_verdict_checks(store, study_id)
    apply_exclusions(benchmarks, verdict_checks)  # failing references and flipping verdicts leave the comparisons
    models: list[ModelData] = []
    for model in study.models:
        variants = []
        for spec in model.variants:
            key = model.variant_key(spec.name)
            stored = rows.get(key)
            variants.append(
                VariantData(
                    key=key,
                    model=model.name,
                    spec=spec,
                    footprint=stored.footprint if stored else None,
                    status=stored.status if stored else "pending",
                    error=stored.error if stored else None,
                    dtype=model.dtype,
                )
            )
        baseline = next(v for v in variants if v.is_baseline)
        count = baseline.footprint.get("num_parameters") if baseline.footprint else None
        models.append(ModelData(model.name, model.params, count, variants))
    outcomes: dict[tuple[str, str], dict[str, dict[int, bool]]] = {}
    missing: list[str] = []
    for model in models:
        for variant in model.variants:
            if variant.status == "failed":
                continue
            for name, bench in benchmarks.items():
                wanted = completion_keys(study, variant.key, name, (p.name for p in bench.problems))
                found = sample_results(store, wanted)
                executed = {pair: r["passed"] for pair, r in found.items() if r["passed"] is not None}
                if len(executed) < len(wanted):
                    missing.append(
                        f"{model.name}/{variant.name} on {name}: {len(wanted) - len(found)} of {len(wanted)} samples "
                        f"not generated, {len(found) - len(executed)} not executed yet"
                    )
                    continue
                table: dict[str, dict[int, bool]] = defaultdict(dict)
                for (problem, sample), passed in executed.items():
                    table[problem][sample] = passed
                outcomes[(variant.key, name)] = dict(table)
    if missing:
        raise InputError(f"study {study_id} is not complete: " + "; ".join(missing))
    stage_seconds: dict[str, float] = defaultdict(float)
    variant_seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for job in jobs:
        stage_seconds[job.stage] += job.seconds
        if job.variant_key:
            variant_seconds[job.variant_key][job.stage] += job.seconds
    environments: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in sorted(recorded, key=lambda r: r.created_at):
        if row.environment not in environments[row.stage]:
            environments[row.stage].append(row.environment)
    return StudyData(
        study,
        models,
        benchmarks,
        outcomes,
        dict(stage_seconds),
        {k: dict(v) for k, v in variant_seconds.items()},
        dict(environments),
        serving,
        verdict_checks,
    )


def suites(benchmarks: dict[str, BenchmarkSet]) -> dict[str, list[str]]:
    """Benchmark names grouped by suite (one Table 3 per suite, one column group per language)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for name in benchmarks:
        grouped[benchmark_info(name).suite].append(name)
    return dict(grouped)
