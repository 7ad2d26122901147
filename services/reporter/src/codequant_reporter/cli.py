"""Subcommands the reporter adds to `codequant`: compare, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from codequant.errors import InputError
from codequant.option_checks import margin_pp, one_of_each
from codequant_reporter import FORMATS

if TYPE_CHECKING:
    from codequant_reporter.noninferiority import Assessment

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)
err_console = Console(highlight=False, soft_wrap=True, stderr=True)


def _open_unit(value: float) -> float:
    if not 0 < value < 1:
        raise typer.BadParameter(f"must be above 0 and below 1, got {value}")
    return value


def detectable(assessment: Assessment) -> str:
    """'drops >= X pp' (or why none) for one comparison."""
    found = assessment.detectable_drop_pp
    return "none (too few problems or passes)" if found is None else f"drops ≥ {found:.1f} pp"


def compare(
    variants: Annotated[
        list[Path],
        typer.Argument(
            metavar="VARIANT.jsonl...", help="variant execution results: JSONL files or folders of them", exists=True
        ),
    ],
    baseline: Annotated[
        Path,
        typer.Option("--baseline", help="baseline execution results: a JSONL file or a folder of them", exists=True),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    alpha: Annotated[float, typer.Option(help="significance level", callback=_open_unit)] = 0.05,
    k: Annotated[str, typer.Option("--k", help="pass@k values, comma-separated")] = "1",
    correction: Annotated[
        Literal["benjamini-hochberg", "bonferroni", "none"], typer.Option(help="multiple-testing correction")
    ] = "benjamini-hochberg",
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples", min=100)] = 10000,
    seed: Annotated[int, typer.Option(help="bootstrap seed", min=0)] = 0,
    margin: Annotated[
        float | None,
        typer.Option(
            help="non-inferiority margin in percentage points of pass@1: adds a verdict per comparison",
            callback=margin_pp,
        ),
    ] = None,
) -> None:
    """Compare variants with a baseline: pass@k, McNemar on paired samples, odds ratio, BH, problem-level tests
    (a warning when the records say they were sampled with other settings than the baseline's); with --margin,
    a non-inferiority verdict and the smallest drop each comparison could detect."""
    from codequant_reporter.compare import adjust_family, compare_paired
    from codequant_reporter.noninferiority import assess
    from codequant_reporter.result_files import paired_files

    try:
        ks = tuple(sorted({int(v) for v in k.split(",")}))
    except ValueError:
        raise InputError(f"--k: expected comma-separated integers, got {k!r}") from None
    if min(ks) < 1:
        raise InputError(f"--k: pass@k needs k >= 1, got {k!r}")
    found = paired_files(baseline, variants, lambda line: err_console.print(line, markup=False))
    results = [
        compare_paired(
            f.paired,
            f.variant,
            ks=ks,
            bootstrap_samples=bootstrap,
            seed=seed,
            labels={"benchmark": f.benchmark} if f.benchmark else {},
        )
        for f in found
    ]
    adjust_family(results, correction, alpha)
    verdicts = [None if margin is None else assess(f.paired, margin_pp=margin, alpha=alpha, seed=seed) for f in found]
    if as_json:
        rows = [{**r.to_dict(), **(v.to_dict() if v else {})} for r, v in zip(results, verdicts, strict=True)]
        json.dump(rows, sys.stdout, indent=2)
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
        *(["verdict", "could detect"] if margin is not None else []),
        title=f"{len(results)} comparison(s), α = {alpha}" + (f", margin {margin:g} pp" if margin is not None else ""),
    )
    for r, v in zip(results, verdicts, strict=True):
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
            *([] if v is None else [v.noninferiority.verdict, "" if r.significant else detectable(v)]),
        )
    console.print(table)
    if margin is not None:
        console.print(
            f"Δ % and CI are variant − baseline (negative: the variant is worse). Verdict: one-sided paired "
            f"t-tests over per-problem pass rates at α = {alpha} against a margin of {margin:g} pp; could detect: the "
            "smallest true drop this many problems and samples detect with power 0.8 (shown where the drop is not "
            "significant).",
            markup=False,
        )


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
    from codequant_reporter.gate_cli import gate
    from codequant_reporter.plan_cli import plan

    app.command()(compare)
    app.command()(report)
    app.command()(gate)
    app.command()(plan)
