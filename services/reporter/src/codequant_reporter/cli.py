"""Subcommands the reporter adds to `codequant`: compare, report."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from codequant.errors import InputError
from codequant.jsonl import read_input_records
from codequant.option_checks import one_of_each
from codequant_reporter import FORMATS

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)
err_console = Console(highlight=False, soft_wrap=True, stderr=True)
#: Sampling settings records carry (from `codequant generate` or MultiPL-E): samples to pair must share them.
SAMPLING = ("temperature", "top_p")


def _sampling(records: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """The (temperature, top_p) pairs the records were sampled with; records that say nothing are left out."""
    return {tuple(r.get(k) for k in SAMPLING) for r in records if any(k in r for k in SAMPLING)}


def _by_benchmark(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[str(record.get("benchmark", ""))].append(record)
    return groups


def _open_unit(value: float) -> float:
    if not 0 < value < 1:
        raise typer.BadParameter(f"must be above 0 and below 1, got {value}")
    return value


def compare(
    variants: Annotated[
        list[Path],
        typer.Argument(metavar="VARIANT.jsonl...", help="variant execution results", exists=True, dir_okay=False),
    ],
    baseline: Annotated[
        Path, typer.Option("--baseline", help="baseline execution results (JSONL)", exists=True, dir_okay=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    alpha: Annotated[float, typer.Option(help="significance level", callback=_open_unit)] = 0.05,
    k: Annotated[str, typer.Option("--k", help="pass@k values, comma-separated")] = "1",
    correction: Annotated[
        Literal["benjamini-hochberg", "bonferroni", "none"], typer.Option(help="multiple-testing correction")
    ] = "benjamini-hochberg",
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples", min=100)] = 10000,
    seed: Annotated[int, typer.Option(help="bootstrap seed", min=0)] = 0,
) -> None:
    """Compare variants with a baseline: pass@k, McNemar on paired samples, odds ratio, BH, problem-level tests
    (a warning when the records say they were sampled with other settings than the baseline's)."""
    from codequant_reporter.compare import adjust_family, compare_paired
    from codequant_reporter.pairing import outcomes, pair

    try:
        ks = tuple(sorted({int(v) for v in k.split(",")}))
    except ValueError:
        raise InputError(f"--k: expected comma-separated integers, got {k!r}") from None
    if min(ks) < 1:
        raise InputError(f"--k: pass@k needs k >= 1, got {k!r}")
    base_records = [record for _, record in read_input_records(baseline)]
    base_groups = _by_benchmark(base_records)
    results = []
    for path in variants:
        records = [record for _, record in read_input_records(path)]
        theirs, ours = _sampling(base_records), _sampling(records)
        if theirs and ours and theirs != ours:
            err_console.print(
                f"warning: {path}: sampled with (temperature, top_p) {sorted(ours)}, the baseline {baseline} with "
                f"{sorted(theirs)}",
                markup=False,
            )
        name = next((str(r["variant"]) for r in records if r.get("variant")), path.stem)
        groups = _by_benchmark(records)
        if groups.keys() != base_groups.keys():
            raise InputError(f"{path}: benchmarks {sorted(groups)} differ from the baseline's {sorted(base_groups)}")
        for benchmark, group in groups.items():
            label = f"{path}" + (f" [{benchmark}]" if benchmark else "")
            paired = pair(outcomes(base_groups[benchmark], f"{baseline}"), outcomes(group, label), label)
            results.append(
                compare_paired(
                    paired,
                    name,
                    ks=ks,
                    bootstrap_samples=bootstrap,
                    seed=seed,
                    labels={"benchmark": benchmark} if benchmark else {},
                )
            )
    adjust_family(results, correction, alpha)
    if as_json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    table = Table(
        "variant",
        "benchmark",
        "pass@1 base",
        *[f"pass@{v}" for v in ks],
        "Δ %",
        "b",
        "c",
        "McNemar p",
        "adj. p",
        "OR",
        "Wilcoxon p",
        "95 % CI (pp)",
        title=f"{len(results)} comparison(s), α = {alpha}",
    )
    for r in results:
        low, high = r.bootstrap_ci
        table.add_row(
            r.variant,
            r.labels.get("benchmark", ""),
            f"{100 * r.baseline_pass1:.1f}",
            *[f"{100 * r.pass_at_k[f'pass@{v}']:.1f}" for v in ks],
            "–" if r.relative_change_pct is None else f"{r.relative_change_pct:+.1f}",
            str(r.table["baseline_only"]),
            str(r.table["variant_only"]),
            f"{r.mcnemar_p:.3g} ({r.mcnemar_method})",
            f"{r.adjusted_p:.3g} {r.significance}".strip(),
            f"{r.odds_ratio:.2f}",
            f"{r.wilcoxon_p:.3g}",
            f"[{100 * low:+.1f}, {100 * high:+.1f}]",
        )
    console.print(table)


def report(
    source: Annotated[str, typer.Argument(metavar="STUDY_ID_OR_DIR", help="study output folder, or study id")],
    out: Annotated[Path | None, typer.Option(help="output folder (default: <output_dir>/report)")] = None,
    formats: Annotated[
        str, typer.Option("--format", help="comma-separated: md,html,csv,tex,json", callback=one_of_each(FORMATS))
    ] = ",".join(FORMATS),
    store: Annotated[str | None, typer.Option(help="results store URL (for a study id)")] = None,
    export: Annotated[
        Literal["mlflow", "wandb"] | None,
        typer.Option(help="also log metrics and files to MLflow or W&B (needs its package)"),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment / W&B project (default: the study's name)")
    ] = None,
) -> None:
    """Render a study's tables (the reference study's Table 3/5/6 layouts), plots and methods section."""
    from codequant_reporter.report import write_and_export_report, write_report

    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    if export is None:
        written = write_report(source, out, chosen, store_url=store)
    else:
        written, where = write_and_export_report(source, export, out, chosen, store_url=store, experiment=experiment)
    folder = next(iter(written.values())).parent
    console.print(f"report written to {folder}/ ({len(written)} files)")
    if export is not None:
        console.print(f"exported to {where}", markup=False)


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(compare)
    app.command()(report)
