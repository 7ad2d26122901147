"""Turn a study into concrete work: variants with their keys, benchmark problems, and stage jobs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codequant.benchmarks import BenchmarkSet
from codequant.study import ModelSpec, Study
from codequant.study.methods import VariantModel

STAGES: tuple[str, ...] = ("quantize", "generate", "execute", "report")


@dataclass(frozen=True)
class VariantPlan:
    """One model variant of the study and where its artifacts go."""

    model: ModelSpec
    variant: VariantModel
    key: str
    artifact_dir: Path

    @property
    def label(self) -> str:
        return f"{self.model.name}/{self.variant.name}"

    @property
    def needs_quantization(self) -> bool:
        return self.variant.quantized and self.variant.endpoint is None


@dataclass(frozen=True)
class Plan:
    """A study resolved into variants and loaded benchmarks."""

    study: Study
    variants: list[VariantPlan]
    benchmarks: dict[str, BenchmarkSet]

    def job_key(self, stage: str, variant: VariantPlan | None = None, benchmark: str | None = None) -> str:
        """Deterministic bookkeeping key of one stage of work within this study."""
        parts = [self.study.name, stage]
        if variant is not None:
            parts.append(variant.key)
        if benchmark is not None:
            parts.append(benchmark)
        return ":".join(parts)


def plan_study(
    study: Study, *, data_dir: Path | None = None, benchmarks: dict[str, BenchmarkSet] | None = None
) -> Plan:
    """Resolve variant keys and load every benchmark (bad benchmark data fails here, before any work);
    ``benchmarks``: the study's benchmarks loaded already (the API loads them one by one to name a bad one)."""
    variants = [
        VariantPlan(
            model=model,
            variant=variant,
            key=model.variant_key(variant.name),
            artifact_dir=study.out_dir / "artifacts" / model.name / variant.name,
        )
        for model in study.models
        for variant in model.variants
    ]
    if benchmarks is None:
        benchmarks = {spec.name: spec.load(data_dir) for spec in study.benchmarks}
    return Plan(study=study, variants=variants, benchmarks=benchmarks)
