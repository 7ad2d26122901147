"""The report's verdict table: per variant and benchmark, is the loss significant, negligible within the study's
margin, or undecided — with the smallest drop the study could have detected beside every non-significant one."""

from __future__ import annotations

from typing import Any

from codequant_reporter.analysis import Analysis, main_pairs
from codequant_reporter.compare import Comparison
from codequant_reporter.formatting import pct, signed
from codequant_reporter.noninferiority import could_detect, noninferiority, rates
from codequant_reporter.power import Design, minimum_detectable_drop
from codequant_reporter.tables import Table


def noninferiority_table(analysis: Analysis) -> Table:
    """One row per comparison with the baseline: change, one-sided bounds, McNemar's mark, verdict, and what the
    study could detect where the drop is not significant."""
    data = analysis.data
    options = data.study.statistics
    margin = options.margin_pp
    detectable: dict[tuple[str, str], float | None] = {}  # (baseline key, benchmark): depends on the baseline only
    rows, records = [], []
    for base_key, benchmark, c, paired in main_pairs(analysis):
        base, var = rates(paired)
        verdict = noninferiority(base, var, margin_pp=margin, alpha=options.alpha)
        if (base_key, benchmark) not in detectable:
            design = Design(tuple(base), len(base), c.samples_per_problem)
            detectable[(base_key, benchmark)] = minimum_detectable_drop(design, alpha=options.alpha, seed=options.seed)
        drop = detectable[(base_key, benchmark)]
        could = "" if c.significant else could_detect(drop)
        rows.append(
            [
                c.labels["model"],
                c.variant,
                benchmark,
                pct(c.baseline_pass1),
                pct(c.pass1),
                signed(verdict.change_pp),
                f"[{verdict.lower_pp:+.1f}, {verdict.upper_pp:+.1f}]",
                _significance(c),
                verdict.verdict,
                could,
            ]
        )
        record: dict[str, Any] = {
            "model": c.labels["model"],
            "variant": c.variant,
            "benchmark": benchmark,
            **verdict.to_dict(),
            "significant": c.significant,
            "detectable_drop_pp": drop,
        }
        records.append(record)
    level = f"{100 * (1 - options.alpha):g} %"
    return Table(
        key="noninferiority",
        title=f"Is the loss negligible? Each variant against its baseline, with a margin of {margin:g} pp",
        columns=[
            "Model",
            "Variant",
            "Benchmark",
            "pass@1 base",
            "pass@1",
            "Change (pp)",
            f"One-sided {level} bounds (pp)",
            "Significant change (McNemar)",
            f"Verdict (margin {margin:g} pp)",
            "What this study could detect",
        ],
        rows=rows,
        records=records,
        notes=[
            "Change: variant − baseline pass@1 in percentage points (negative: the variant is worse). Bounds: "
            "one-sided paired t-test over the per-problem pass rates (problems are the units). Non-inferior: the "
            f"lower bound is above −{margin:g} pp; drop shown: the upper bound is below 0 and the lower bound reaches "
            "the margin; inconclusive: neither — the data can rule out neither a loss nor one beyond the margin; "
            "uninformative: the baseline passes no sample of any problem, so no drop can be seen whatever the "
            "variant does (never counted as non-inferior).",
            "What this study could detect: the smallest true pass@1 drop detected with power 0.8 at one-sided "
            f"α = {options.alpha:g}, given these problems, their baseline pass rates and n (simulated at the "
            "problem level); shown where McNemar's adjusted p-value is not significant.",
        ],
    )


def _significance(c: Comparison) -> str:
    """'drop ***' or 'gain *' where McNemar's adjusted p is below α, else 'no'."""
    if not c.significant:
        return "no"
    return ("drop " if c.pass1 < c.baseline_pass1 else "gain ") + c.significance
