"""`codequant plan`: how many problems or samples a study needs to see a drop of a given margin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from codequant.errors import InputError
from codequant.option_checks import margin_pp

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _unit(value: float | None) -> float | None:
    if value is not None and not 0 < value < 1:
        raise typer.BadParameter(f"must be above 0 and below 1, got {value:g}")
    return value


def _designs(baseline: Path | None, pass_rate: float | None, problems: int | None, n: int | None):
    """(benchmark, per-problem rates, problems, n) from a baseline's results, or one assumed design."""
    if (baseline is None) == (pass_rate is None):
        raise InputError("give either --baseline (results to take per-problem pass rates from) or --pass-rate")
    if baseline is None:
        if problems is None or n is None:
            raise InputError("--pass-rate needs --problems and --n")
        return [("assumed", (pass_rate,), problems, n)]
    from codequant_reporter.pairing import outcomes
    from codequant_reporter.result_files import by_benchmark, read_results

    found = []
    for benchmark, records in by_benchmark(read_results(baseline)).items():
        table = outcomes(records, f"{baseline}" + (f" [{benchmark}]" if benchmark else ""))
        rates = tuple(sum(s.values()) / len(s) for s in table.values())
        samples = n or min(len(s) for s in table.values())
        found.append((benchmark or "all problems", rates, problems or len(rates), samples))
    return found


def plan(
    margin: Annotated[float, typer.Option(help="drop to detect, percentage points of pass@1", callback=margin_pp)],
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline", help="a baseline's results (JSONL file or folder): per-problem pass rates", exists=True
        ),
    ] = None,
    pass_rate: Annotated[
        float | None, typer.Option(help="assumed pass rate of every problem (instead of --baseline)", callback=_unit)
    ] = None,
    problems: Annotated[int | None, typer.Option(help="problems in the study (default: the baseline's)", min=2)] = None,
    n: Annotated[int | None, typer.Option("--n", help="samples per problem (default: the baseline's)", min=1)] = None,
    alpha: Annotated[float, typer.Option(help="one-sided significance level", callback=_unit)] = 0.05,
    power: Annotated[float, typer.Option(help="probability of detecting the drop", callback=_unit)] = 0.8,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    seed: Annotated[int, typer.Option(help="simulation seed", min=0)] = 0,
) -> None:
    """Plan a study: the smallest drop this many problems and samples detect, and the problems (at this n) or
    samples per problem (at this many problems) a drop of --margin needs — equally, to show a variant that loses
    nothing non-inferior within --margin — with probability --power (simulated at the problem level)."""
    from codequant_reporter.power import plan as plan_design

    rows: list[dict[str, Any]] = []
    for benchmark, rates, count, samples in _designs(baseline, pass_rate, problems, n):
        found = plan_design(rates, samples, margin, problems=count, alpha=alpha, target=power, seed=seed)
        rows.append(
            {
                "benchmark": benchmark,
                "problems": count,
                "n": samples,
                "baseline_pass1": sum(rates) / len(rates),
                "detectable_drop_pp": found.current_drop_pp,
                "problems_needed": found.problems_needed,
                "n_needed": found.n_needed,
            }
        )
    if as_json:
        json.dump({"margin_pp": margin, "alpha": alpha, "power": power, "plans": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    table = Table(
        "benchmark",
        "baseline pass@1",
        "problems",
        "n",
        "detects drops ≥ (pp)",
        f"problems for {margin:g} pp (at n)",
        f"n for {margin:g} pp (at problems)",
        title=f"Study size for a {margin:g} pp drop: one-sided α = {alpha:g}, power {power:g}",
    )
    for row in rows:
        table.add_row(
            row["benchmark"],
            f"{100 * row['baseline_pass1']:.1f}",
            str(row["problems"]),
            str(row["n"]),
            "none" if row["detectable_drop_pp"] is None else f"{row['detectable_drop_pp']:.1f}",
            _needed(row["problems_needed"]),
            _needed(row["n_needed"]),
        )
    console.print(table)


def _needed(value: int | None) -> str:
    return "more than 4096" if value is None else str(value)
