"""The study's tables in the reference study's layouts (its Tables 3, 5 and 6), plus details.

The layouts are specific to this study design, so they are assembled here by hand; the comparisons come from
``analysis``, the number formats from ``formatting``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from codequant.benchmarks import benchmark_info
from codequant_reporter.analysis import REPORTED_K, Analysis, comparison_ks, pass_at, table_ks
from codequant_reporter.compare import Comparison
from codequant_reporter.formatting import bench_label, language_label, num, odds, pct, pvalue, signed, size
from codequant_reporter.study_data import StudyData, VariantData, suites


@dataclass
class Table:
    """A rendered-agnostic table: header groups, columns, formatted rows and machine-readable rows."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    groups: list[tuple[str, int]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def pass1_tables(analysis: Analysis) -> list[Table]:
    """pass@k of every variant, one table per suite (the reference study's Table 3 layout): Model | Params |
    Precision | Size | per language: pass@1 (mark), pass@10 and pass@100 where n allows, OR."""
    data = analysis.data
    tables = []
    for suite, names in suites(data.benchmarks).items():
        ks = table_ks(data, [(v, n) for m in data.models for v in m.variants for n in names])
        columns = ["Model", "Params", "Precision", "Size"]
        groups = [("", 4)]
        for name in names:
            columns += [*(f"pass@{k}" for k in ks), "OR"]
            groups.append((language_label(benchmark_info(name).language, name), len(ks) + 1))
        rows, records = [], []
        for model in data.models:
            for variant in model.variants:
                row = [model.name, model.params_label, variant.precision, size(variant)]
                record: dict[str, Any] = {
                    "model": model.name,
                    "variant": variant.name,
                    "params": model.params_label,
                    "precision": variant.precision,
                    "size_bytes": variant.size_bytes,
                }
                for name in names:
                    if not data.usable(variant):
                        row += ["failed", *("" for _ in ks)]
                        continue
                    comparison = analysis.main.get((variant.key, name))
                    values = {f"pass@{k}": pass_at(data, variant, name, k) for k in ks}
                    mark = f" {comparison.significance}" if comparison and comparison.significance else ""
                    row += [pct(values["pass@1"]) + mark, *(pct(values[f"pass@{k}"]) for k in ks[1:])]
                    row.append(odds(comparison.odds_ratio) if comparison else "")
                    record[name] = {
                        **values,
                        "mark": mark.strip(),
                        "odds_ratio": comparison.odds_ratio if comparison else None,
                        "adjusted_p": comparison.adjusted_p if comparison else None,
                    }
                rows.append(row)
                records.append(record)
        tables.append(
            Table(
                key=f"table3-{_slug(suite)}",
                title=f"pass@k (%) of each variant on {suite}, with its significance against the baseline",
                columns=columns,
                rows=rows,
                groups=groups,
                records=records,
                notes=[
                    _marks_note(data),
                    _passk_note(ks),
                    "OR: baseline-only passes / variant-only passes over paired samples (above 1: the variant loses).",
                    _paper_note(3),
                ],
            )
        )
    return tables


def calibration_table(analysis: Analysis) -> Table | None:
    """Each calibration set vs the random one for the same model and quantization setting (the reference
    study's Table 5 layout); None without calibration pairs."""
    data = analysis.data
    if not analysis.calibration:
        return None
    names = list(data.benchmarks)
    ks = table_ks(data, [(side, n) for twin, variant, n, _ in analysis.calibration for side in (twin, variant)])
    columns = [
        "Model",
        "Precision",
        "Calibration",
        *[f"{bench_label(n)} pass@1" for n in names],
        *[f"{bench_label(n)} pass@{k}" for k in ks[1:] for n in names],
        *[f"{bench_label(n)} OR" for n in names],
    ]
    grouped: dict[tuple[str, str], dict[str, Comparison]] = defaultdict(dict)
    pairs: dict[tuple[str, str], tuple[VariantData, VariantData]] = {}
    for twin, variant, benchmark, comparison in analysis.calibration:
        grouped[(twin.key, variant.key)][benchmark] = comparison
        pairs[(twin.key, variant.key)] = (twin, variant)
    rows, records = [], []
    seen_twins: set[str] = set()
    for key, comparisons in grouped.items():
        twin, variant = pairs[key]
        if twin.key not in seen_twins:
            seen_twins.add(twin.key)
            rows.append(
                [
                    twin.model,
                    twin.precision,
                    "random (reference)",
                    *[pct(pass_at(data, twin, n, k)) for k in ks for n in names],
                    *["" for _ in names],
                ]
            )
        cells = [
            pct(comparisons[n].pass1) + (f" {comparisons[n].significance}" if comparisons[n].significance else "")
            for n in names
        ]
        rows.append(
            [
                variant.model,
                variant.precision,
                variant.calibration + (" + fine-tuning" if variant.finetuned else ""),
                *cells,
                *[pct(pass_at(data, variant, n, k)) for k in ks[1:] for n in names],
                *[odds(comparisons[n].odds_ratio) for n in names],
            ]
        )
        records.append(
            {
                "model": variant.model,
                "variant": variant.name,
                "reference": twin.name,
                "comparisons": {n: c.to_dict() for n, c in comparisons.items()},
            }
        )
    return Table(
        key="table5-calibration",
        title="Does the calibration set matter? pass@k (%) of each calibration set against random calibration",
        columns=columns,
        rows=rows,
        records=records,
        notes=[
            _marks_note(data),
            _passk_note(ks),
            "OR: random-only passes / this calibration's-only passes (above 1: this calibration set loses).",
            _paper_note(5),
        ],
    )


def model_size_table(analysis: Analysis) -> Table:
    """Model size vs the relative change of pass@1 under each quantized variant (the reference study's Table 6
    layout, with its Dec % turned into a change: negative is a loss, as everywhere in the report)."""
    data = analysis.data
    names = list(data.benchmarks)
    ks = comparison_ks(analysis.main.values())
    columns = ["Model", "Params", "Precision"]
    for n in names:
        columns += [f"{bench_label(n)} base", f"{bench_label(n)} quant.", f"{bench_label(n)} change %"]
        columns += [f"{bench_label(n)} pass@{k} {side}" for k in ks[1:] for side in ("base", "quant.")]
    rows, records = [], []
    ordered = sorted(data.models, key=lambda m: m.num_parameters or 0)
    for model in ordered:
        for variant in model.variants:
            if variant.is_baseline or not data.usable(variant):
                continue
            row = [model.name, model.params_label, variant.precision]
            record: dict[str, Any] = {"model": model.name, "params": model.num_parameters, "variant": variant.name}
            for n in names:
                comparison = analysis.main.get((variant.key, n))
                if comparison is None:
                    row += ["–"] * (3 + 2 * len(ks[1:]))
                    continue
                change = comparison.relative_change_pct
                row += [pct(comparison.baseline_pass1), pct(comparison.pass1), signed(change)]
                for k in ks[1:]:
                    row += [pct(comparison.baseline_pass_at_k[f"pass@{k}"]), pct(comparison.pass_at_k[f"pass@{k}"])]
                record[n] = {
                    "baseline": comparison.baseline_pass1,
                    "quantized": comparison.pass1,
                    "change_pct": change,
                    **{f"baseline pass@{k}": comparison.baseline_pass_at_k[f"pass@{k}"] for k in ks[1:]},
                    **{f"quantized pass@{k}": comparison.pass_at_k[f"pass@{k}"] for k in ks[1:]},
                }
            rows.append(row)
            records.append(record)
    return Table(
        key="table6-model-size",
        title="Does model size soften the loss? Relative change of pass@1 by model size",
        columns=columns,
        rows=rows,
        records=records,
        notes=[
            "change %: (quantized − baseline) / baseline × 100 of pass@1; negative is a loss (the paper's Dec % with "
            "the opposite sign).",
            _passk_note(ks),
            _paper_note(6),
        ],
    )


def comparisons_table(analysis: Analysis) -> Table:
    """Every comparison with all its statistics, including the problem-level analyses."""
    ks = comparison_ks(analysis.main.values())
    columns = [
        "Model",
        "Variant",
        "Benchmark",
        "n",
        "pass@1 base",
        "pass@1",
        *[f"pass@{k}{side}" for k in ks[1:] for side in (" base", "")],
        "Δ %",
        "95 % CI (pp)",
        "b",
        "c",
        "McNemar p",
        "adj. p",
        "OR",
        "Wilcoxon p",
        "Memory saved %",
    ]
    rows, records = [], []
    for (_, benchmark), c in analysis.main.items():
        low, high = c.bootstrap_ci
        rows.append(
            [
                c.labels["model"],
                c.variant,
                benchmark,
                str(c.samples_per_problem),
                pct(c.baseline_pass1),
                pct(c.pass1),
                *[pct(p[f"pass@{k}"]) for k in ks[1:] for p in (c.baseline_pass_at_k, c.pass_at_k)],
                signed(c.relative_change_pct),
                f"[{100 * low:+.1f}, {100 * high:+.1f}]",
                str(c.table["baseline_only"]),
                str(c.table["variant_only"]),
                f"{pvalue(c.mcnemar_p)} ({c.mcnemar_method})",
                pvalue(c.adjusted_p) + f" {c.significance}".rstrip(),
                odds(c.odds_ratio),
                pvalue(c.wilcoxon_p),
                signed(c.memory_reduction_pct),
            ]
        )
        records.append(c.to_dict())
    return Table(
        key="comparisons",
        title="All comparisons with the baseline (sample-level and problem-level tests)",
        columns=columns,
        rows=rows,
        records=records,
        notes=[
            "Δ %: (variant − baseline) / baseline × 100 of pass@1, negative is a loss; CI in percentage points of "
            "the same difference. Memory saved %: (1 − variant bytes / baseline bytes) × 100. "
            "b: baseline-only passes, c: variant-only passes (samples paired by problem and sample index). "
            "McNemar: exact binomial when b + c < 25, else χ² with continuity correction; adj. p: "
            f"{analysis.data.study.statistics.correction} within each {analysis.data.study.statistics.family}. "
            "Wilcoxon: signed-rank test over per-problem pass rates; CI: seeded bootstrap over problems of the "
            "pass@1 difference, in percentage points.",
            _passk_note(ks),
        ],
    )


def memory_table(data: StudyData) -> Table:
    """Size, reduction and bits per weight of every variant."""
    columns = [
        "Model",
        "Variant",
        "Precision",
        "Size",
        "Memory saved %",
        "Bits/weight",
        "Bits/weight with scales",
        "Stored bits/weight",
    ]
    rows, records = [], []
    for model in data.models:
        base = model.baseline.size_bytes
        for variant in model.variants:
            fp = variant.footprint or {}
            reduction = (1 - variant.size_bytes / base) * 100 if base and variant.size_bytes else None
            rows.append(
                [
                    model.name,
                    variant.name,
                    variant.precision,
                    size(variant),
                    signed(reduction),
                    num(variant.bits),
                    num(fp.get("nominal_bits_per_param")),
                    num(fp.get("stored_bits_per_param")),
                ]
            )
            records.append({"model": model.name, "variant": variant.name, "footprint": fp, "reduction_pct": reduction})
    return Table(
        key="memory",
        title="Memory footprint of each variant",
        columns=columns,
        rows=rows,
        records=records,
        notes=[
            "Size: stored bytes of the weights (GB = 10^9 bytes). Bits/weight: the method's bits per quantized "
            "weight (RTN's bits, AQLM's code bits M·B/g, the dtype's for the baseline); with scales: adding the "
            "scales, zero points and codebooks each quantized layer also stores (e.g. 3-bit RTN with an fp16 scale "
            "and zero point per 32 weights: 3 + 32/32 = 4); stored: as the files hold them (codes wider than 8 "
            "bits stored as int16)."
        ],
    )


def _slug(text: str) -> str:
    return "".join(ch.lower() if ch.isalnum() else "-" for ch in text).strip("-").replace("--", "-")


def _passk_note(ks: list[int]) -> str:
    shown = ", ".join(f"pass@{k}" for k in ks)
    hidden = [f"pass@{k}" for k in REPORTED_K if k not in ks]
    note = f"{shown}: unbiased estimator of Chen et al. (2021), mean over problems"
    return note + (f"; {', '.join(hidden)} left out: some row has fewer samples per problem." if hidden else ".")


def _paper_note(number: int) -> str:
    return (
        f'Table {number} layout of the reference study (Giagnorio et al., 2025, "Evaluating the Impact of '
        'Post-Training Quantization on Large Language Models for Code Generation").'
    )


def _marks_note(data: StudyData) -> str:
    s = data.study.statistics
    return (
        f"Marks on McNemar p-values adjusted by {s.correction} (family: one {s.family}): "
        "• p<0.1, * p<0.05, ** p<0.01, *** p<0.001."
    )
