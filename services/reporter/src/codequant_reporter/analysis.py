"""The study's comparisons: every variant against its model's baseline, every calibration set against its random
twin (with the multiple-testing correction the study asks for), and the pass@k and sample counts the tables show.

The statistics themselves come from ``compare``; the layouts that show them from ``tables`` and ``plots``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from codequant.benchmarks import benchmark_info
from codequant.passk import mean_pass_at_k
from codequant_reporter.compare import Comparison, adjust_family, compare_paired
from codequant_reporter.pairing import Paired, pair
from codequant_reporter.study_data import ModelData, StudyData, VariantData

#: The pass@k a table shows, each where every row of the table has at least k samples per problem.
REPORTED_K = (1, 10, 100)


@dataclass
class Analysis:
    """All comparisons of a study."""

    data: StudyData
    main: dict[tuple[str, str], Comparison]  # (variant key, benchmark) -> vs its model's baseline
    calibration: list[tuple[VariantData, VariantData, str, Comparison]]  # (random twin, variant, benchmark, c)


def analyse(data: StudyData) -> Analysis:
    """Compare every variant with its baseline, and every calibration set with its random twin."""
    options = data.study.statistics
    main: dict[tuple[str, str], Comparison] = {}
    for model in data.models:
        base = model.baseline
        for variant in model.variants:
            if variant.is_baseline or not data.usable(variant) or not data.usable(base):
                continue
            for benchmark in data.benchmarks:
                main[(variant.key, benchmark)] = _compare(data, base, variant, benchmark)
    for family in _families(data, main, options.family):
        adjust_family(family, options.correction, options.alpha)
    calibration = []
    for model in data.models:
        for twin, variant in _calibration_pairs(data, model):
            for benchmark in data.benchmarks:
                calibration.append((twin, variant, benchmark, _compare(data, twin, variant, benchmark)))
    adjust_family([c for *_, c in calibration], options.correction, options.alpha)
    return Analysis(data, main, calibration)


def _compare(data: StudyData, base: VariantData, variant: VariantData, benchmark: str) -> Comparison:
    label = f"{variant.model}/{variant.name} on {benchmark}"
    paired = pair(data.outcomes[(base.key, benchmark)], data.outcomes[(variant.key, benchmark)], label)
    memory = (base.size_bytes, variant.size_bytes) if base.size_bytes and variant.size_bytes else None
    info = benchmark_info(benchmark)
    n = min(samples(data, base, benchmark), samples(data, variant, benchmark))
    return compare_paired(
        paired,
        variant.name,
        ks=[k for k in REPORTED_K if k <= n],
        bootstrap_samples=data.study.statistics.bootstrap_samples,
        seed=data.study.statistics.seed,
        memory=memory,
        labels={
            "model": variant.model,
            "baseline": base.name,
            "benchmark": benchmark,
            "suite": info.suite,
            "language": info.language,
        },
    )


def _families(data: StudyData, main: dict[tuple[str, str], Comparison], family: str) -> list[list[Comparison]]:
    groups: dict[str, list[Comparison]] = defaultdict(list)
    for (_, benchmark), comparison in main.items():
        key = {"table": benchmark_info(benchmark).suite, "benchmark": benchmark, "study": "all"}[family]
        groups[key].append(comparison)
    return list(groups.values())


def _calibration_pairs(data: StudyData, model: ModelData) -> list[tuple[VariantData, VariantData]]:
    by_setting: dict[tuple, list[VariantData]] = defaultdict(list)
    for variant in model.variants:
        if variant.calibration is not None and data.usable(variant):
            by_setting[variant.setting()].append(variant)
    pairs = []
    for variants in by_setting.values():
        twin = next((v for v in variants if v.calibration == "random"), None)
        if twin is not None:
            pairs += [(twin, v) for v in variants if v is not twin]
    return pairs


def pass_at(data: StudyData, variant: VariantData, benchmark: str, k: int = 1) -> float | None:
    """Mean unbiased pass@k of a variant on a benchmark; None without outcomes or with fewer than k samples."""
    table = data.outcomes.get((variant.key, benchmark))
    if not table or k > samples(data, variant, benchmark):
        return None
    return mean_pass_at_k(((len(s), sum(s.values())) for s in table.values()), k)


def samples(data: StudyData, variant: VariantData, benchmark: str) -> int:
    """Samples per problem of a variant on a benchmark (the fewest any problem has); 0 without outcomes."""
    table = data.outcomes.get((variant.key, benchmark))
    return min((len(s) for s in table.values()), default=0) if table else 0


def table_ks(data: StudyData, cells: list[tuple[VariantData, str]]) -> list[int]:
    """The reported k that every (variant, benchmark) cell with outcomes has enough samples for."""
    counts = [samples(data, v, b) for v, b in cells if (v.key, b) in data.outcomes]
    fewest = min(counts, default=1)
    return [k for k in REPORTED_K if k <= fewest]


def comparison_ks(comparisons: Iterable[Comparison]) -> list[int]:
    """The reported k that every comparison (both sides paired) has enough samples for."""
    fewest = min((c.samples_per_problem for c in comparisons), default=1)
    return [k for k in REPORTED_K if k <= fewest]


def main_pairs(analysis: Analysis) -> list[tuple[str, str, Comparison, Paired]]:
    """(baseline key, benchmark, comparison, paired outcomes) of every comparison with a baseline."""
    data = analysis.data
    keys = {(v.model, v.name): v.key for m in data.models for v in m.variants}
    found = []
    for (variant_key, benchmark), c in analysis.main.items():
        base_key = keys[(c.labels["model"], c.labels["baseline"])]
        paired = pair(data.outcomes[(base_key, benchmark)], data.outcomes[(variant_key, benchmark)], c.variant)
        found.append((base_key, benchmark, c, paired))
    return found
