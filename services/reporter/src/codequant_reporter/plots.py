"""The study's plots (matplotlib, Agg): pass@1 vs memory with the Pareto front, drop vs bits, drop vs size."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, ScalarFormatter

from codequant.benchmarks import benchmark_info
from codequant_reporter.analysis import Analysis, pass_at
from codequant_reporter.formatting import language_label
from codequant_reporter.perplexity_vs_pass import perplexity_vs_pass1

MARKERS = "osD^vP*Xh<>"


def _label(benchmark: str) -> str:
    info = benchmark_info(benchmark)
    return f"{info.suite} — {language_label(info.language)}"


def _grid(count: int) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(count, 2)
    rows = (count + cols - 1) // cols
    figure, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.4 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[count:]:
        ax.set_visible(False)
    return figure, flat[:count]


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated by another with less or equal memory and higher or equal pass@1, by memory."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def pass1_vs_memory(analysis: Analysis, path: Path) -> Path:
    data = analysis.data
    sizes = [v.size_bytes for m in data.models for v in m.variants if v.size_bytes]
    unit, scale = ("GB", 1e9) if not sizes or max(sizes) >= 1e9 else ("MB", 1e6)
    figure, axes = _grid(len(data.benchmarks))
    for ax, benchmark in zip(axes, data.benchmarks, strict=True):
        for index, model in enumerate(data.models):
            labels: dict[tuple[float, float], list[str]] = {}
            for variant in model.variants:
                value = pass_at(data, variant, benchmark) if data.usable(variant) else None
                if value is None or variant.size_bytes is None:
                    continue
                labels.setdefault((variant.size_bytes / scale, 100 * value), []).append(variant.name)
            previous: tuple[float, float, int] | None = None
            for (x, y), names in sorted(labels.items(), key=lambda item: (item[0][1], item[0][0])):
                # Variants at the same point share one marker and label; labels of near neighbours alternate
                # above and below their markers.
                near = previous is not None and previous[1] == y and x / previous[0] < 1.1
                below = near and previous is not None and previous[2] == 0
                ax.scatter(x, y, marker=MARKERS[index % len(MARKERS)], color=f"C{index}", zorder=3)
                ax.annotate(
                    "\n".join(names),
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, -6 - 9 * len(names)) if below else (4, 4),
                    fontsize=7,
                )
                previous = (x, y, 1 if below else 0)
            front = pareto_front(list(labels))
            if front:
                xs, ys = zip(*front, strict=True)
                ax.plot(xs, ys, color=f"C{index}", alpha=0.6, label=f"{model.name} (Pareto front)")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"memory ({unit}, log scale)")
        ax.set_ylabel("pass@1 (%)")
        ax.set_title(_label(benchmark), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle("pass@1 vs memory footprint")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def drop_vs_bits(analysis: Analysis, path: Path) -> Path:
    data = analysis.data
    figure, axes = _grid(len(data.benchmarks))
    for ax, benchmark in zip(axes, data.benchmarks, strict=True):
        for index, model in enumerate(data.models):
            points = sorted(
                (variant.bits, c.relative_change_pct)
                for variant in model.variants
                if (c := analysis.main.get((variant.key, benchmark)))
                and variant.bits
                and c.relative_change_pct is not None
            )
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker=MARKERS[index % len(MARKERS)], color=f"C{index}", label=model.name)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("bits per weight (nominal, log scale)")
        ax.set_ylabel("relative change of pass@1 (%)")
        ax.set_title(_label(benchmark), fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:  # every baseline failed everything here: a relative change is undefined
            ax.text(0.5, 0.5, "no baseline pass@1 > 0", transform=ax.transAxes, ha="center", color="grey")
    figure.suptitle("Relative change of pass@1 vs bits per weight")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def drop_vs_size(analysis: Analysis, path: Path) -> Path:
    data = analysis.data
    figure, axes = _grid(len(data.benchmarks))
    for ax, benchmark in zip(axes, data.benchmarks, strict=True):
        series: dict[str, list[tuple[float, float]]] = {}
        for model in data.models:
            if not model.num_parameters:
                continue
            for variant in model.variants:
                c = analysis.main.get((variant.key, benchmark))
                if c is not None and c.relative_change_pct is not None:
                    series.setdefault(variant.precision, []).append((model.num_parameters, c.relative_change_pct))
        for index, (label, points) in enumerate(sorted(series.items())):
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker=MARKERS[index % len(MARKERS)], color=f"C{index}", label=label)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel("relative change of pass@1 (%)")
        ax.set_title(_label(benchmark), fontsize=10)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7)
    figure.suptitle("Relative change of pass@1 vs model size")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


PLOTS = {
    "pass1_vs_memory.png": pass1_vs_memory,
    "drop_vs_bits.png": drop_vs_bits,
    "drop_vs_size.png": drop_vs_size,
    "perplexity_vs_pass1.png": perplexity_vs_pass1,
}
