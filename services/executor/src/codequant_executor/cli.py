"""Subcommands the executor adds to `codequant`: execute."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from codequant.jsonl import read_jsonl_numbered, write_jsonl

console = Console(highlight=False, soft_wrap=True, stderr=True)


def execute(
    input_path: Annotated[Path, typer.Argument(metavar="IN.jsonl", help="records to execute")],
    out: Annotated[Path, typer.Option("--out", help="results JSONL (written atomically)")],
    workers: Annotated[int | None, typer.Option(help="parallel programs (default: CPU count)")] = None,
    timeout: Annotated[float, typer.Option(help="wall-clock seconds per program")] = 15.0,
    memory_mb: Annotated[int, typer.Option(help="memory limit per program")] = 1024,
    store: Annotated[str | None, typer.Option(help="results store URL: reuse and keep executions")] = None,
) -> None:
    """Run untrusted completions against their tests in the sandbox."""
    from codequant.limits import Limits
    from codequant_executor.api import execute_records

    numbered = list(read_jsonl_numbered(input_path))
    lines = [number for number, _ in numbered]
    store_handle = None
    if store:
        from codequant.store import Store

        store_handle = Store(store)
    with Progress(
        TextColumn("execute"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("execute", total=len(numbered))
        results = execute_records(
            [record for _, record in numbered],
            Limits(timeout_s=timeout, memory_mb=memory_mb),
            workers=workers,
            store=store_handle,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            where=lambda i: f"{input_path}:{lines[i]}",
        )
    write_jsonl(out, results)
    counts = collections.Counter(r["status"] for r in results)
    table = Table("status", "programs", title=f"{out}: {len(results)} results")
    for status, count in counts.most_common():
        table.add_row(status, str(count))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(execute)
