"""Subcommands the executor adds to `codequant`: execute."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from codequant.errors import InputError, ServiceError
from codequant.interop.problems import ProblemLookup
from codequant.jsonl import atomic_writer, read_input_records
from codequant.limits import Limits
from codequant.option_checks import above, check_out_file

console = Console(highlight=False, soft_wrap=True, stderr=True)
#: The exit code of a run stopped by Ctrl-C (as a shell reports SIGINT).
INTERRUPTED = 130


def execute(
    input_path: Annotated[
        Path | None, typer.Argument(metavar="IN.jsonl", help="records to execute", exists=True, dir_okay=False)
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="results JSONL (written atomically)")] = Path("-"),
    self_check: Annotated[
        str | None,
        typer.Option(
            "--self-check",
            metavar="BENCHMARK",
            help="instead of IN.jsonl: run the reference solutions of a benchmark (name or JSONL file) twice; "
            "--out gets the JSON report",
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="parallel programs (default: CPU count)", min=1)] = None,
    timeout: Annotated[float, typer.Option(help="wall-clock seconds per program", callback=above(0))] = 15.0,
    memory_mb: Annotated[int, typer.Option(help="memory limit per program")] = 1024,
    store: Annotated[str | None, typer.Option(help="results store URL: reuse and keep executions")] = None,
    insecure: Annotated[
        bool, typer.Option(help="run even where the sandbox cannot cut programs off the network (not advised)")
    ] = False,
) -> None:
    """Run untrusted completions against their tests in the sandbox (records without tests get them from the
    benchmark they name, as `codequant generate` writes them).

    Results go to --out in input order as they finish (renamed into place at the end). Ctrl-C stops the
    programs still running, writes the results that finished and exits with 130.

    With --self-check BENCHMARK, the benchmark's reference solutions run twice instead (docs/executor.md): a
    table of checked, failed and flipped problems, and the JSON report in --out; exit code 1 if any failed."""
    from codequant_executor.api import close_shared_pool, iter_execute_records, program_of, shared_pool
    from codequant_executor.results_out import ResultSink

    limits = _limits(timeout, memory_mb)
    if (input_path is None) == (self_check is None):
        raise InputError("give IN.jsonl or --self-check BENCHMARK (one of them)")
    if out == Path("-"):
        raise InputError("--out: missing")
    check_out_file(out)
    if self_check is not None:
        from codequant_executor.self_check_cli import run_self_check

        run_self_check(self_check, out, limits, workers=workers, insecure=insecure or None, console=console)
        return
    assert input_path is not None
    lookup = ProblemLookup()  # `codequant generate` records name their benchmark instead of holding its tests
    numbered = [(n, lookup.complete(r, f"{input_path}:{n}")) for n, r in read_input_records(input_path)]
    records = [record for _, record in numbered]
    where = [f"{input_path}:{number}" for number, _ in numbered]
    for record, place in zip(records, where, strict=True):
        program_of(record, place)  # every record is checked before anything runs or is written
    store_handle = None
    if store:
        from codequant.store import Store

        store_handle = Store(store)
    stop = threading.Event()
    with _ctrl_c_sets(stop):  # from here to the closed pool: Ctrl-C stops the run, never the clean-up
        try:
            shared_pool(workers, insecure=insecure or None)  # refusals and slot errors before the progress bar
            with (
                Progress(
                    TextColumn("execute"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
                ) as bar,
                atomic_writer(out) as handle,
            ):
                task = bar.add_task("execute", total=len(records))
                sink = ResultSink(handle, store_handle)
                for index, result in iter_execute_records(
                    records,
                    limits,
                    workers=workers,
                    insecure=insecure or None,
                    store=store_handle,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    where=lambda i: where[i],
                    stop=stop,
                ):
                    sink.add(index, result)
                sink.finish()
        finally:
            close_shared_pool()  # fork and compile servers, their folders, the slots: nothing outlives the command
    table = Table("status", "programs", title=f"{out}: {sink.written} results")
    for status, count in sink.counts.most_common():
        table.add_row(status, str(count))
    console.print(table)
    if sink.store_error:
        assert store_handle is not None
        raise ServiceError(
            f"--store {store_handle.safe_url}: the results are in {out} but were not all stored ({sink.store_error})"
        )
    if stop.is_set():
        console.print(f"interrupted: {sink.written} of {len(records)} results written to {out}", markup=False)
        raise typer.Exit(INTERRUPTED)


@contextlib.contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """While the block runs, Ctrl-C (SIGINT) sets ``stop`` instead of raising KeyboardInterrupt anywhere: the
    programs end, the results that finished are written whole."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
