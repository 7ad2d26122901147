"""`codequant execute --self-check BENCHMARK`: the reference self-check from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from codequant.benchmarks import load_benchmark
from codequant.jsonl import atomic_writer
from codequant.limits import Limits


def run_self_check(
    benchmark: str, out: Path, limits: Limits, *, workers: int | None, insecure: bool | None, console: Console
) -> None:
    """Check every reference solution of ``benchmark`` (a built-in name or a user's JSONL file); print the counts
    and failures, write the JSON report to ``out``; exit code 1 when a reference failed."""
    from codequant_executor.api import close_shared_pool, execution_provenance, shared_pool
    from codequant_executor.self_check import self_check

    given = Path(benchmark)
    if benchmark.endswith(".jsonl"):  # a user's benchmark file, named after its stem
        problems = load_benchmark(given.stem, path=given)
        benchmark = given.stem
    else:
        problems = load_benchmark(benchmark)
    try:
        check = self_check(problems, limits, workers=workers, insecure=insecure)
        provenance = execution_provenance(shared_pool().sandbox.layers, limits)
    finally:
        close_shared_pool()
    summary = check.summary()
    table = Table("benchmark", "language", "checked", "failed", "flipped", "without reference", title="self-check")
    table.add_row(
        *(str(summary[k]) for k in ("benchmark", "language", "checked", "failed", "flipped")),
        str(summary["no_reference"]),
    )
    console.print(table)
    for name, reason in check.failed.items():
        console.print(f"excluded {name}: {reason}", markup=False)
    if check.no_reference:
        console.print(f"{benchmark}: {len(check.no_reference)} problems have no reference solution", markup=False)
    with atomic_writer(out) as handle:
        handle.write(json.dumps({**check.to_dict(), "provenance": provenance}, indent=1) + "\n")
    if check.failed:
        raise typer.Exit(1)
