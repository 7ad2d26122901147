"""Subcommands the executor adds to `codequant`: execute."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from codequant.errors import InputError, ServiceError
from codequant.interop.problems import ProblemLookup
from codequant.jsonl import read_input_records, write_jsonl
from codequant.limits import Limits
from codequant.option_checks import above, check_out_file

console = Console(highlight=False, soft_wrap=True, stderr=True)


def execute(
    input_path: Annotated[
        Path, typer.Argument(metavar="IN.jsonl", help="records to execute", exists=True, dir_okay=False)
    ],
    out: Annotated[Path, typer.Option("--out", help="results JSONL (written atomically)")],
    workers: Annotated[int | None, typer.Option(help="parallel programs (default: CPU count)", min=1)] = None,
    timeout: Annotated[float, typer.Option(help="wall-clock seconds per program", callback=above(0))] = 15.0,
    memory_mb: Annotated[int, typer.Option(help="memory limit per program")] = 1024,
    store: Annotated[str | None, typer.Option(help="results store URL: reuse and keep executions")] = None,
    insecure: Annotated[
        bool, typer.Option(help="run even where the sandbox cannot cut programs off the network (not advised)")
    ] = False,
) -> None:
    """Run untrusted completions against their tests in the sandbox (records without tests get them from the
    benchmark they name, as `codequant generate` writes them)."""
    from codequant_executor.api import execute_records, program_of, shared_pool

    limits = _limits(timeout, memory_mb)
    check_out_file(out)
    lookup = ProblemLookup()  # `codequant generate` records name their benchmark instead of holding its tests
    numbered = [(n, lookup.complete(r, f"{input_path}:{n}")) for n, r in read_input_records(input_path)]
    shared_pool(workers, insecure=insecure or None)  # refusals and slot errors before the progress bar
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
            limits,
            workers=workers,
            insecure=insecure or None,
            store=store_handle,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            where=lambda i: f"{input_path}:{lines[i]}",
        )
    write_jsonl(out, results)  # first: a store that refuses a row must not cost the run's results
    if store_handle is not None:
        _keep(store_handle, out, ({**r, "language": program_of(r)[1]} for r in results))
    counts = collections.Counter(r["status"] for r in results)
    table = Table("status", "programs", title=f"{out}: {len(results)} results")
    for status, count in counts.most_common():
        table.add_row(status, str(count))
    console.print(table)


def _keep(store: Any, out: Path, results: Iterable[dict[str, Any]]) -> None:
    """Store the results (``--store``); a store that fails is one line naming it, after ``out`` was written."""
    from sqlalchemy.exc import SQLAlchemyError

    from codequant.executions import store_executions

    try:
        store_executions(store, results)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ServiceError(
            f"--store {store.safe_url}: the results are in {out} but were not stored ({reason})"
        ) from None


def _limits(timeout: float, memory_mb: int) -> Limits:
    """The limits, or an InputError naming the option that is out of range."""
    try:
        return Limits(timeout_s=timeout, memory_mb=memory_mb)
    except ValueError as exc:
        option = "--timeout" if str(exc).startswith("timeout") else "--memory-mb"
        raise InputError(f"{option}: {exc}") from None


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(execute)
