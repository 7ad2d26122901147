"""What broke: problems each variant lost or gained (noise separated from real change), how failing samples failed
(each variant beside its baseline), and, for the HTML report, each lost problem's completions side by side."""

from __future__ import annotations

import html
from collections import Counter
from typing import Any

from codequant_reporter.analysis import Analysis, main_pairs
from codequant_reporter.failures import KINDS, Sample
from codequant_reporter.flips import Flip, flips
from codequant_reporter.formatting import pvalue
from codequant_reporter.tables import Table

Samples = dict[tuple[str, str], dict[str, dict[int, Sample]]]
#: Lost problems shown side by side in the HTML report, per variant and benchmark (most certain first).
SHOWN_PER_COMPARISON = 10


def _kinds(samples: dict[int, Sample]) -> str:
    counts = Counter(s.kind for s in samples.values() if s.kind)
    return ", ".join(f"{kind} ×{count}" for kind, count in counts.most_common()) or "–"


def _all_flips(analysis: Analysis) -> list[tuple[str, str, Any, list[Flip]]]:
    alpha = analysis.data.study.statistics.alpha
    return [(base_key, benchmark, c, flips(paired, alpha)) for base_key, benchmark, c, paired in main_pairs(analysis)]


def flip_tables(analysis: Analysis, samples: Samples) -> list[Table]:
    """The flip summary, the "what broke" list and the failure taxonomy."""
    found = _all_flips(analysis)
    return [_summary(analysis, found), _what_broke(analysis, found, samples), _taxonomy(analysis, samples)]


def _summary(analysis: Analysis, found: list) -> Table:
    rows, records = [], []
    for _, benchmark, c, changed in found:
        counts = Counter((f.direction, f.real) for f in changed)
        cells = [counts[("lost", True)], counts[("lost", False)], counts[("gained", True)], counts[("gained", False)]]
        rows.append([c.labels["model"], c.variant, benchmark, str(c.problems), *map(str, cells)])
        records.append(
            {
                "model": c.labels["model"],
                "variant": c.variant,
                "benchmark": benchmark,
                "problems": c.problems,
                "lost_real": cells[0],
                "lost_noise": cells[1],
                "gained_real": cells[2],
                "gained_noise": cells[3],
            }
        )
    alpha = analysis.data.study.statistics.alpha
    return Table(
        key="flips",
        title="Problems each variant lost or gained against its baseline",
        columns=[
            "Model",
            "Variant",
            "Benchmark",
            "Problems",
            "Lost (beyond noise)",
            "Lost (within noise)",
            "Gained (beyond noise)",
            "Gained (within noise)",
        ],
        rows=rows,
        records=records,
        notes=[
            "A problem is lost (gained) when the variant passes fewer (more) of its n samples than the baseline. "
            "Beyond noise: Fisher's exact test of the two pass counts, Benjamini-Hochberg adjusted over the "
            f"comparison's problems, below α = {alpha:g}; within noise: a difference the n samples explain."
        ],
    )


def _what_broke(analysis: Analysis, found: list, samples: Samples) -> Table:
    rows, records = [], []
    for base_key, benchmark, c, changed in found:
        variant_key = _variant_key(analysis, c)
        for f in (f for f in changed if f.lost):
            base_kinds = _kinds(samples.get((base_key, benchmark), {}).get(f.problem, {}))
            var_kinds = _kinds(samples.get((variant_key, benchmark), {}).get(f.problem, {}))
            rows.append(
                [
                    c.labels["model"],
                    c.variant,
                    benchmark,
                    f.problem,
                    f"{f.baseline_passes}/{f.n}",
                    f"{f.variant_passes}/{f.n}",
                    pvalue(f.adjusted_p),
                    "yes" if f.real else "no",
                    var_kinds,
                    base_kinds,
                ]
            )
            records.append(
                {
                    "model": c.labels["model"],
                    "variant": c.variant,
                    "benchmark": benchmark,
                    "problem": f.problem,
                    "n": f.n,
                    "baseline_passes": f.baseline_passes,
                    "variant_passes": f.variant_passes,
                    "p_value": f.p_value,
                    "adjusted_p": f.adjusted_p,
                    "beyond_noise": f.real,
                    "variant_failures": var_kinds,
                    "baseline_failures": base_kinds,
                }
            )
    return Table(
        key="what-broke",
        title="What broke: each problem a variant passes less often than its baseline, and how its samples failed",
        columns=[
            "Model",
            "Variant",
            "Benchmark",
            "Problem",
            "Baseline passes",
            "Variant passes",
            "Adj. p (Fisher, BH)",
            "Beyond noise",
            "Variant's failures",
            "Baseline's failures",
        ],
        rows=rows,
        records=records,
        notes=["Most certain first within each comparison; failure kinds as in the failure taxonomy table."],
    )


def _variant_key(analysis: Analysis, c: Any) -> str:
    return next(
        v.key for m in analysis.data.models for v in m.variants if (m.name, v.name) == (c.labels["model"], c.variant)
    )


def _taxonomy(analysis: Analysis, samples: Samples) -> Table:
    data = analysis.data
    counted: list[tuple[str, str, Counter]] = []
    for model in data.models:
        for variant in model.variants:
            if not data.usable(variant):
                continue
            kinds = Counter(
                s.kind
                for benchmark in data.benchmarks
                for problem in samples.get((variant.key, benchmark), {}).values()
                for s in problem.values()
                if s.kind
            )
            counted.append((model.name, variant.name, kinds))
    seen = {kind for *_, kinds in counted for kind in kinds}
    order = {kind: index for index, kind in enumerate(KINDS)}
    columns = sorted(seen, key=lambda k: (order.get(k.split(":")[0], len(KINDS)), k))
    rows = [[m, v, str(sum(kinds.values())), *(str(kinds[k]) for k in columns)] for m, v, kinds in counted]
    records = [{"model": m, "variant": v, "failures": dict(kinds)} for m, v, kinds in counted]
    return Table(
        key="failure-taxonomy",
        title="How failing samples failed, each variant beside its baseline (all benchmarks)",
        columns=["Model", "Variant", "Failing samples", *columns],
        rows=rows,
        records=records,
        notes=[
            "From the execution records: what the model produced comes first — empty completion, repetition (at "
            "least 6 lines, at most a third distinct), truncated completion (stopped at the token limit) — then the "
            "execution's status: syntax error (Python) or compile error (Java), exception by the type its error "
            "output names, assertion failure, timeout, memory, output limit."
        ],
    )


def lost_problems_html(analysis: Analysis, samples: Samples) -> str:
    """For each lost problem (up to SHOWN_PER_COMPARISON per comparison), the baseline's passing completion and
    the variant's failing one side by side, with the variant's error."""
    e = html.escape
    parts = ["<h2 id='lost-problems'>Lost problems: baseline and variant completions side by side</h2>"]
    for base_key, benchmark, c, changed in _all_flips(analysis):
        lost = [f for f in changed if f.lost][:SHOWN_PER_COMPARISON]
        if not lost:
            continue
        variant_key = _variant_key(analysis, c)
        parts.append(f"<h3>{e(c.labels['model'])}/{e(c.variant)} on {e(benchmark)}</h3>")
        for f in lost:
            base = samples.get((base_key, benchmark), {}).get(f.problem, {})
            var = samples.get((variant_key, benchmark), {}).get(f.problem, {})
            good = next((s for s in base.values() if s.passed), None)
            bad = next((s for s in var.values() if not s.passed), None)
            if good is None or bad is None:
                continue
            noise = "beyond noise" if f.real else "within noise"
            parts.append(
                f"<p class='note'>{e(f.problem)}: {f.baseline_passes}/{f.n} → {f.variant_passes}/{f.n} ({noise}); "
                f"variant failed with {e(bad.kind or '?')}</p><table class='side'><tr><th>baseline (passes)</th>"
                f"<th>variant (fails)</th></tr><tr><td><pre>{e(good.completion)}</pre></td>"
                f"<td><pre>{e(bad.completion)}</pre><pre class='error'>{e(bad.error)}</pre></td></tr></table>"
            )
    return "\n".join(parts) if len(parts) > 1 else ""
