"""`codequant gate`: a release gate for CI — exit 0 only when every variant is non-inferior on every benchmark."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codequant.errors import InputError
from codequant.option_checks import margin_pp

console = Console(highlight=False, soft_wrap=True)
err_console = Console(highlight=False, soft_wrap=True, stderr=True)


def _alpha(value: float) -> float:
    if not 0 < value < 0.5:
        raise typer.BadParameter(f"a one-sided level above 0 and below 0.5, got {value:g}")
    return value


def gate(
    variants: Annotated[
        list[Path],
        typer.Argument(metavar="VARIANT...", help="variant results: JSONL files or folders of them", exists=True),
    ],
    baseline: Annotated[
        Path, typer.Option("--baseline", help="baseline results: a JSONL file or a folder of them", exists=True)
    ],
    margin: Annotated[
        float, typer.Option(help="largest acceptable pass@1 drop, percentage points", callback=margin_pp)
    ],
    alpha: Annotated[float, typer.Option(help="one-sided significance level", callback=_alpha)] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    seed: Annotated[int, typer.Option(help="seed of the detectable-drop simulation", min=0)] = 0,
) -> None:
    """Release gate: exit 0 when every variant is non-inferior to the baseline within --margin on every benchmark,
    1 when a drop is shown, the data cannot tell (inconclusive) or the baseline passes nothing (uninformative: no
    drop can be seen), 2 for bad input; one line per benchmark."""
    from codequant_reporter.noninferiority import INCONCLUSIVE, assess, could_detect
    from codequant_reporter.result_files import paired_files

    found = paired_files(baseline, variants, lambda line: err_console.print(line, markup=False))
    if not found:
        raise InputError(f"{baseline}: no results to compare")
    rows = []
    for f in found:
        verdict = assess(f.paired, margin_pp=margin, alpha=alpha, seed=seed)
        rows.append(
            {
                "variant": f.variant,
                "benchmark": f.benchmark,
                "problems": len(f.paired.problems),
                "passes": verdict.noninferiority.passes,
                "reason": verdict.noninferiority.reason(),
                **verdict.to_dict(),
            }
        )
    passed = all(row["passes"] for row in rows)
    if as_json:
        payload = {"passed": passed, "margin_pp": margin, "alpha": alpha, "comparisons": rows}
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for row in rows:
            where = f"{row['variant']} on {row['benchmark'] or 'all problems'}"
            could = ""
            if row["noninferiority"]["verdict"] == INCONCLUSIVE:
                could = "; " + could_detect(row["detectable_drop_pp"])
            console.print(f"{'PASS' if row['passes'] else 'FAIL'} {where}: {row['reason']}{could}", markup=False)
        total = sum(row["passes"] for row in rows)
        console.print(f"gate {'passed' if passed else 'failed'}: {total} of {len(rows)} non-inferior", markup=False)
    if not passed:
        raise typer.Exit(1)
