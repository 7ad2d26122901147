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


def openmp_wait_policy(load: float, cores: int) -> str | None:
    """PASSIVE on a machine with more runnable tasks than cores, else None (OpenMP's default).

    By default torch's idle OpenMP threads spin a while between operations; on a busy machine the spinning
    thread takes the CPU from the one with work (tiny-model training 1.4-2.3x slower at load 11-15 on 2
    cores; docs/performance.md). Sleeping threads must be woken for each parallel region (~1 200 per training
    step), which an idle machine need not pay. The work is split the same way: results are unchanged."""
    return "PASSIVE" if load > cores else None


def main() -> None:
    """Entry point: run the CLI, turning CodequantError into one line on stderr and its exit code."""
    policy = openmp_wait_policy(os.getloadavg()[0], len(os.sched_getaffinity(0)))
    if policy and "OMP_WAIT_POLICY" not in os.environ:  # before torch loads OpenMP (nothing has yet)
        os.environ["OMP_WAIT_POLICY"] = policy  # server subprocesses inherit it
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
