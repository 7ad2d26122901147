"""Everything a study's report needs, read from the results store."""

from __future__ import annotations

import platform
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from sqlalchemy import select

from codequant.benchmarks import BENCHMARKS, BenchmarkSet, load_benchmark
from codequant.errors import InputError
from codequant.results import completion_keys, sample_results
from codequant.store import Job, Store, StudyVariant, Variant
from codequant.store import Study as StudyRow
from codequant.study import Study, parse_study

DTYPE_BITS = {"float32": 32, "float16": 16, "bfloat16": 16}


@dataclass
class VariantData:
    """One variant as the tables show it."""

    key: str
    model: str
    name: str
    method: str
    config: dict[str, Any]
    footprint: dict[str, Any] | None
    status: str
    error: str | None
    dtype: str

    @property
    def is_baseline(self) -> bool:
        return self.method == "baseline"

    @property
    def size_bytes(self) -> int | None:
        return int(self.footprint["total_bytes"]) if self.footprint else None

    @property
    def bits(self) -> float | None:
        """Bits per weight of quantized layers: nominal for AQLM and RTN, the dtype's for the baseline."""
        c = self.config
        if self.method == "aqlm":
            return c["num_codebooks"] * c["nbits_per_codebook"] / (c["in_group_size"] * c["out_group_size"])
        if self.method == "rtn":
            return float(c["bits"])
        if self.method in ("gptq", "awq"):
            return float(c["scheme"][1])
        if self.method == "bnb-int8":
            return 8.0
        if self.method == "bnb-nf4":
            return 4.0
        if self.dtype in DTYPE_BITS:
            return float(DTYPE_BITS[self.dtype])
        if self.footprint and self.footprint.get("num_parameters"):
            return round(self.footprint["total_bytes"] * 8 / self.footprint["num_parameters"])
        return None

    @property
    def precision(self) -> str:
        """The Precision column, e.g. ``fp16``, ``2-bit AQLM 1x15``, ``4-bit RTN g128``."""
        c = self.config
        if self.is_baseline:
            bits = self.bits
            return {16: "fp16", 32: "fp32"}.get(int(bits), f"{bits:g}-bit") if bits else "full"
        if self.method == "aqlm":
            label = f"{self.bits:g}-bit AQLM {c['num_codebooks']}x{c['nbits_per_codebook']}"
            if c["in_group_size"] != 8 or c["out_group_size"] != 1:
                label += f" g{c['in_group_size']}x{c['out_group_size']}"
            extras = [self.calibration] if self.calibration not in (None, "random") else []
            if self.finetuned:
                extras.append("fine-tuned")
            return label + (f" ({', '.join(extras)})" if extras else "")
        if self.method == "rtn":
            return f"{c['bits']}-bit RTN g{c['group_size']}"
        if self.method in ("gptq", "awq"):
            group = "" if c["scheme"] == "W8A8" else f" g{c['group_size']}"  # W8A8 scales per channel
            return f"{self.method.upper()} {c['scheme']}{group}"
        return {"bnb-int8": "int8 (bitsandbytes)", "bnb-nf4": "nf4 (bitsandbytes)"}.get(self.method, self.method)

    @property
    def calibration(self) -> str | None:
        cal = self.config.get("calibration")
        return cal["set"] if isinstance(cal, dict) else None

    @property
    def finetuned(self) -> bool:
        return bool(self.config.get("finetune"))

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
    environment: dict[str, str] = field(default_factory=dict)

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
    benchmarks = {
        spec.name: load_benchmark(
            spec.name,
            exclude_humaneval_overlap=spec.exclude_humaneval_overlap,
            problems=spec.problems,
            limit=spec.limit,
        )
        for spec in study.benchmarks
    }
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
                    name=spec.name,
                    method=spec.method,
                    config=spec.method_config(),
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
    return StudyData(
        study,
        models,
        benchmarks,
        outcomes,
        dict(stage_seconds),
        {k: dict(v) for k, v in variant_seconds.items()},
        environment(),
    )


def environment() -> dict[str, str]:
    """Software versions and hardware, read without importing heavy packages."""
    info = {"python": platform.python_version(), "platform": platform.platform()}
    for package in (
        "codequant-shared",
        "codequant-reporter",
        "torch",
        "transformers",
        "aqlm",
        "statsmodels",
        "scipy",
        "numpy",
    ):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    info["cpu"] = _cpu_model()
    try:
        import os

        info["cpu_cores"] = str(os.cpu_count())
        info["memory_gib"] = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f}"
    except (ValueError, OSError):
        pass
    info["gpu"] = _gpus()
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gpus() -> str:
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return "none"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return "; ".join(out.splitlines()) or "none"


def suites(benchmarks: dict[str, BenchmarkSet]) -> dict[str, list[str]]:
    """Benchmark names grouped by suite (one Table 3 per suite, one column group per language)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for name in benchmarks:
        grouped[BENCHMARKS[name].suite].append(name)
    return dict(grouped)
