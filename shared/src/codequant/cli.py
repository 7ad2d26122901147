"""The ``codequant`` command. Each installed service adds its subcommands through the
``codequant.cli`` entry-point group, so an image without torch still has ``codequant execute``."""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points

import typer
from rich.console import Console

from codequant.errors import CodequantError

app = typer.Typer(
    name="codequant",
    help="Measure how much code-generation accuracy quantization costs, and whether the loss is real.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _load_plugins() -> None:
    for ep in sorted(entry_points(group="codequant.cli"), key=lambda e: e.name):
        ep.load()(app)


def main() -> None:
    """Entry point: run the CLI, turning CodequantError into one line on stderr and its exit code."""
    # Read once, when torch loads its OpenMP runtime (nothing has yet): idle OpenMP threads sleep instead of
    # spinning for milliseconds between operations, which on a busy machine took the CPU from the threads with
    # work (tiny-model training twice as fast at load 16 on 2 cores; docs/performance.md). Results are unchanged:
    # the work is split the same way. Server subprocesses inherit it; a value already set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _load_plugins()
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting with it.
        code = app(standalone_mode=False)
    except CodequantError as exc:
        for line in str(exc).splitlines() or [exc.__class__.__name__]:
            err_console.print(f"error: {line}", markup=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted", markup=False)
        sys.exit(130)
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
