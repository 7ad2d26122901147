"""Perplexity is not enough, shown with data: each variant's change of held-out perplexity against its change of
pass@1, with Spearman's rank correlation per benchmark, and the variants whose perplexity barely moves while
pass@1 falls (a table and a plot).

Both changes are variant minus baseline: perplexity in percent of the baseline's (positive: worse), pass@1 in
percentage points (negative: worse)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from codequant.benchmarks import benchmark_info
from codequant_reporter.analysis import Analysis
from codequant_reporter.formatting import language_label
from codequant_reporter.tables import Table

#: Perplexity "barely moves": its change is within this many percent of the baseline's perplexity.
PPL_BARELY_PCT = 5.0
#: pass@1 "falls": it drops by at least this many percentage points.
PASS1_FALL_PP = 2.0


@dataclass(frozen=True)
class Point:
    """One quantized variant on one benchmark."""

    model: str
    variant: str
    benchmark: str
    ppl_change_pct: float
    pass1_change_pp: float
    significant: bool

    @property
    def hidden_loss(self) -> bool:
        """Perplexity barely moves while pass@1 falls."""
        return abs(self.ppl_change_pct) <= PPL_BARELY_PCT and self.pass1_change_pp <= -PASS1_FALL_PP


def points(analysis: Analysis) -> list[Point]:
    """Every compared variant whose held-out perplexity and its baseline's were both measured."""
    data = analysis.data
    found = []
    for model in data.models:
        base_ppl = (data.serving.get(model.baseline.key) or {}).get("perplexity")
        if not base_ppl:
            continue
        for variant in model.variants:
            ppl = (data.serving.get(variant.key) or {}).get("perplexity")
            for benchmark in data.benchmarks:
                c = analysis.main.get((variant.key, benchmark))
                if c is None or ppl is None:
                    continue
                found.append(
                    Point(
                        model=model.name,
                        variant=variant.name,
                        benchmark=benchmark,
                        ppl_change_pct=100 * (ppl - base_ppl) / base_ppl,
                        pass1_change_pp=100 * (c.pass1 - c.baseline_pass1),
                        significant=c.significant,
                    )
                )
    return found


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson's on mid-ranks); None for fewer than 3 pairs or a constant side."""
    if len(xs) != len(ys):
        raise ValueError("spearman needs pairs")
    if len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mean = (len(xs) + 1) / 2
    cov = sum((a - mean) * (b - mean) for a, b in zip(rx, ry, strict=True))
    vx, vy = sum((a - mean) ** 2 for a in rx), sum((b - mean) ** 2 for b in ry)
    return None if vx == 0 or vy == 0 else cov / math.sqrt(vx * vy)


def correlations(found: list[Point]) -> dict[str, tuple[float | None, int]]:
    """Benchmark -> (Spearman's rho between perplexity change and pass@1 change, number of variants)."""
    by_benchmark: dict[str, list[Point]] = {}
    for point in found:
        by_benchmark.setdefault(point.benchmark, []).append(point)
    return {
        b: (spearman([p.ppl_change_pct for p in ps], [p.pass1_change_pp for p in ps]), len(ps))
        for b, ps in by_benchmark.items()
    }


def perplexity_vs_pass_table(analysis: Analysis) -> Table | None:
    """Model | Variant | Benchmark | Δ perplexity (%) | Δ pass@1 (pp) | significant | hidden loss; None when no
    variant has a measured perplexity."""
    found = points(analysis)
    if not found:
        return None
    rows = [
        [
            p.model,
            p.variant,
            p.benchmark,
            f"{p.ppl_change_pct:+.1f}",
            f"{p.pass1_change_pp:+.1f}",
            "yes" if p.significant else "no",
            "yes" if p.hidden_loss else "",
        ]
        for p in found
    ]
    rhos = "; ".join(
        f"{b}: ρ = {'–' if rho is None else f'{rho:+.2f}'} over {n} variants"
        for b, (rho, n) in correlations(found).items()
    )
    hidden = sorted({f"{p.model}/{p.variant} on {p.benchmark}" for p in found if p.hidden_loss})
    return Table(
        key="perplexity_vs_pass1",
        title="Held-out perplexity change vs pass@1 change",
        columns=["Model", "Variant", "Benchmark", "Δ perplexity (%)", "Δ pass@1 (pp)", "Significant", "Hidden loss"],
        rows=rows,
        records=[{**p.__dict__, "hidden_loss": p.hidden_loss} for p in found],
        notes=[
            "Changes are variant minus baseline: perplexity on codequant's held-out code set in % of the "
            "baseline's (positive: worse), pass@1 in percentage points (negative: worse). Spearman's rank "
            f"correlation per benchmark: {rhos} (– : fewer than 3 variants or no spread).",
            f"Hidden loss: perplexity within ±{PPL_BARELY_PCT:g}% of the baseline's while pass@1 falls by "
            f"{PASS1_FALL_PP:g} pp or more — "
            + (", ".join(hidden) if hidden else "no variant here")
            + ". Perplexity alone would have passed these variants.",
        ],
    )


def perplexity_vs_pass1(analysis: Analysis, path: Path) -> Path:
    """One panel per benchmark: Δ pass@1 against Δ perplexity, the 'barely moves' band shaded, hidden losses
    in red, Spearman's rho in the title."""
    found = points(analysis)
    benchmarks = analysis.data.benchmarks
    cols = min(max(len(benchmarks), 1), 2)
    rows = (len(benchmarks) + cols - 1) // cols or 1
    figure, grid = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.4 * rows), squeeze=False)
    axes = [ax for row in grid for ax in row]
    rhos = correlations(found)
    for ax in axes[len(benchmarks) :]:
        ax.set_visible(False)
    for ax, benchmark in zip(axes, benchmarks, strict=False):
        mine = [p for p in found if p.benchmark == benchmark]
        ax.axvspan(
            -PPL_BARELY_PCT, PPL_BARELY_PCT, color="grey", alpha=0.15, label=f"|Δ perplexity| ≤ {PPL_BARELY_PCT:g}%"
        )
        ax.axhline(0, color="grey", linewidth=0.8)
        for p in mine:
            ax.scatter(p.ppl_change_pct, p.pass1_change_pp, color="C3" if p.hidden_loss else "C0", zorder=3)
            ax.annotate(f"{p.model}/{p.variant}", (p.ppl_change_pct, p.pass1_change_pp), xytext=(4, 4),
                        textcoords="offset points", fontsize=7)  # fmt: skip
        if not mine:
            ax.text(0.5, 0.5, "no held-out perplexity measured", transform=ax.transAxes, ha="center", color="grey")
        rho, n = rhos.get(benchmark, (None, 0))
        info = benchmark_info(benchmark)
        shown = "–" if rho is None else f"{rho:+.2f}"
        ax.set_title(f"{info.suite} — {language_label(info.language)} (Spearman ρ = {shown}, {n} variants)", fontsize=9)
        ax.set_xlabel("held-out perplexity change (% of baseline; + is worse)")
        ax.set_ylabel("pass@1 change (pp; − is worse)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle("Perplexity is not enough: perplexity change vs pass@1 change")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
