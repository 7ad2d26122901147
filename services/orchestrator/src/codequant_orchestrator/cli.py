"""Subcommands the orchestrator adds to `codequant`: run, status, api."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(highlight=False, soft_wrap=True)


def run(
    study: Annotated[Path, typer.Argument(help="study YAML file")],
    distributed: Annotated[bool, typer.Option(help="dispatch work to Celery workers over Redis")] = False,
    broker: Annotated[str | None, typer.Option(help="broker URL (default: $CODEQUANT_BROKER_URL)")] = None,
    store: Annotated[str | None, typer.Option(help="results store URL (default: the study's)")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda: where quantization runs")] = "cpu",
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Run a study: quantize, serve and sample, execute, compare and report. Stored work is skipped."""
    from codequant_orchestrator.bookkeeping import set_study_status, stage_progress
    from codequant_orchestrator.progress import StageProgress
    from codequant_orchestrator.studies import open_study
    from codequant_orchestrator.summary import print_summary

    opened = open_study(study, store_url=store)
    totals = {stage: counts["total"] for stage, counts in stage_progress(opened.store, opened.plan).items()}
    set_study_status(opened.store, opened.study.name, "running")
    with StageProgress(totals, console=console, enabled=progress) as bars:
        if distributed:
            from codequant_orchestrator.distributed import DistributedRunner

            failures = DistributedRunner(opened.plan, opened.store, bars, broker_url=broker, device=device).run()
        else:
            from codequant_orchestrator.embedded import EmbeddedRunner

            failures = EmbeddedRunner(opened.plan, opened.store, bars, device=device).run()
    set_study_status(
        opened.store,
        opened.study.name,
        "failed" if failures else "done",
        "; ".join(f"{k}: {v}" for k, v in failures.items()) or None,
    )
    print_summary(console, opened.plan, opened.store)
    for label, error in failures.items():
        console.print(f"[red]failed[/red] {label}: {error}")
    if failures:
        raise typer.Exit(1)


def status(
    target: Annotated[str, typer.Argument(help="study YAML file, output folder, or study id (with --store)")],
    store: Annotated[str | None, typer.Option(help="results store URL")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show a study's progress per stage."""
    from codequant_orchestrator.bookkeeping import stage_progress
    from codequant_orchestrator.studies import find_study

    opened = find_study(target, store_url=store)
    progress = stage_progress(opened.store, opened.plan)
    if as_json:
        json.dump({"study": opened.study.name, "stages": progress}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    table = Table("stage", "done", "total", "failed", title=f"study {opened.study.name}")
    for stage, counts in progress.items():
        table.add_row(stage, str(counts["done"]), str(counts["total"]), str(counts["failed"]))
    console.print(table)


def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    store: Annotated[
        str | None, typer.Option(help="results store URL (default: $CODEQUANT_STORE_URL or SQLite)")
    ] = None,
    distributed: Annotated[bool, typer.Option(help="run studies on Celery workers")] = False,
    broker: Annotated[str | None, typer.Option(help="broker URL (default: $CODEQUANT_BROKER_URL)")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda: where quantization runs")] = "cpu",
) -> None:
    """Serve the HTTP API and the dashboard: submit studies, follow progress, read reports."""
    import uvicorn

    from codequant_orchestrator.api import create_app

    uvicorn.run(
        create_app(store_url=store, distributed=distributed, broker_url=broker, device=device),
        host=host,
        port=port,
        log_level="warning",
    )


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(run)
    app.command()(status)
    app.command()(api)
