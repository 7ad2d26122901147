"""Subcommands the orchestrator adds to `codequant`: run, status, api, agreement."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from codequant.errors import InputError
from codequant.option_checks import device as device_check
from codequant_orchestrator.agreement_cli import agreement

console = Console(highlight=False, soft_wrap=True)


def run(
    study: Annotated[Path, typer.Argument(help="study YAML file", exists=True, dir_okay=False)],
    distributed: Annotated[bool, typer.Option(help="dispatch work to Celery workers over Redis")] = False,
    broker: Annotated[str | None, typer.Option(help="broker URL (default: $CODEQUANT_BROKER_URL)")] = None,
    store: Annotated[str | None, typer.Option(help="results store URL (default: the study's)")] = None,
    device: Annotated[
        str, typer.Option(help="cpu | cuda | cuda:N: where quantization runs", callback=device_check)
    ] = "cpu",
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Run a study: quantize, serve and sample, execute, compare and report. Stored work is skipped."""
    from codequant_orchestrator.bookkeeping import set_study_status, stage_progress
    from codequant_orchestrator.cancellation import CANCELLED, StudyCancelled
    from codequant_orchestrator.progress import StageProgress
    from codequant_orchestrator.studies import open_study
    from codequant_orchestrator.summary import print_summary
    from codequant_orchestrator.verification import InfrastructureFailure

    opened = open_study(study, store_url=store)
    totals = {stage: counts["total"] for stage, counts in stage_progress(opened.store, opened.plan).items()}
    set_study_status(opened.store, opened.study.name, "running")
    try:
        with StageProgress(totals, console=console, enabled=progress) as bars:
            if distributed:
                from codequant_orchestrator.distributed import DistributedRunner

                failures = DistributedRunner(opened.plan, opened.store, bars, broker_url=broker, device=device).run()
            else:
                from codequant_orchestrator.embedded import EmbeddedRunner

                failures = EmbeddedRunner(opened.plan, opened.store, bars, device=device).run()
    except StudyCancelled as exc:  # through the HTTP API, which shares this store
        set_study_status(opened.store, opened.study.name, CANCELLED)
        console.print(f"[yellow]cancelled[/yellow]: {exc}; the work done is stored, run it again to resume")
        raise typer.Exit(1) from None
    except InfrastructureFailure as exc:  # the executor kept failing: no verdict on any variant, a clear error
        set_study_status(opened.store, opened.study.name, "failed", str(exc))
        raise
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
    port: Annotated[int, typer.Option(help="port (0: any free one)", min=0, max=65535)] = 8000,
    store: Annotated[
        str | None, typer.Option(help="results store URL (default: $CODEQUANT_STORE_URL or SQLite in the output root)")
    ] = None,
    output_root: Annotated[
        Path | None, typer.Option(help="folder all study output goes under (default: $CODEQUANT_OUTPUT_ROOT or ./runs)")
    ] = None,
    distributed: Annotated[bool, typer.Option(help="run studies on Celery workers")] = False,
    broker: Annotated[str | None, typer.Option(help="broker URL (default: $CODEQUANT_BROKER_URL)")] = None,
    device: Annotated[
        str, typer.Option(help="cpu | cuda | cuda:N: where quantization runs", callback=device_check)
    ] = "cpu",
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="serve without API tokens even on an address other hosts can reach")
    ] = False,
) -> None:
    """Serve the HTTP API and the dashboard: submit studies, follow progress, cancel, read reports.

    Every route but /health and the dashboard page needs `Authorization: Bearer <token>`, the tokens given by
    $CODEQUANT_API_TOKEN and $CODEQUANT_API_TOKENS_FILE (see `codequant api-token`). Without any token it serves
    only a loopback address, unless --no-auth."""
    import uvicorn

    from codequant_orchestrator.api import create_app
    from codequant_orchestrator.api.auth import Tokens, startup_line

    tokens = Tokens.from_environment()
    console.print(f"codequant api: {startup_line(host, tokens, no_auth=no_auth)}")
    uvicorn.run(
        create_app(
            store_url=store,
            distributed=distributed,
            broker_url=broker,
            device=device,
            output_root=output_root,
            tokens=None if no_auth or not tokens.configured else tokens,
        ),
        host=host,
        port=port,
        log_level="warning",
    )


def api_token(
    name: Annotated[str, typer.Argument(help="what the token is for (shown in the tokens file), e.g. alice")],
    file: Annotated[
        Path | None, typer.Option(help="tokens file to append the hash to (default: $CODEQUANT_API_TOKENS_FILE)")
    ] = None,
) -> None:
    """Make an API token: print it once, and append only its SHA-256 hash to the tokens file."""
    from codequant import settings
    from codequant_orchestrator.api.auth import add_token

    path = file or Path(os.environ.get(settings.API_TOKENS_FILE_ENV, ""))
    if not path.name:
        raise InputError(f"give --file or set ${settings.API_TOKENS_FILE_ENV}: the tokens file the API reads")
    token = add_token(path, name)
    print(token)
    typer.echo(f"token {name!r}: its hash is in {path}; the token itself is shown only now", err=True)


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(run)
    app.command()(status)
    app.command()(api)
    app.command("api-token")(api_token)
    app.command()(agreement)
