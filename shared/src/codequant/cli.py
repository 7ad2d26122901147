"""The ``codequant`` command. Each installed service adds its subcommands through the
``codequant.cli`` entry-point group, so an image without torch still has ``codequant execute``.

Every bad invocation ends the same way: one line on stderr, exit code 2 (3 for an unreachable service), no
traceback, nothing written. Options state their own rules (ranges, choices, existing paths) so that typer
rejects a bad value before the command runs; ``run`` turns typer's usage errors into that one line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Annotated

import typer
from rich.console import Console

from codequant import numerics, quiet
from codequant.errors import CodequantError

app = typer.Typer(
    name="codequant",
    help="Measure how much code-generation accuracy quantization costs, and whether the loss is real.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
_loaded = False


@app.callback()
def _options(
    verbose: Annotated[
        bool, typer.Option("--verbose", help="also show the libraries' warnings, logs and progress bars")
    ] = False,
) -> None:
    """Measure how much code-generation accuracy quantization costs, and whether the loss is real."""
    quiet.configure(verbose_output=verbose or quiet.verbose())


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    for ep in sorted(entry_points(group="codequant.cli"), key=lambda e: e.name):
        ep.load()(app)
    _loaded = True


def openmp_wait_policy(load: float, cores: int) -> str | None:
    """PASSIVE on a machine with more runnable tasks than cores, else None (OpenMP's default).

    By default torch's idle OpenMP threads spin a while between operations; on a busy machine the spinning
    thread takes the CPU from the one with work (tiny-model training 1.4-2.3x slower at load 11-15 on 2
    cores; docs/performance.md). Sleeping threads must be woken for each parallel region (~1 200 per training
    step), which an idle machine need not pay. The work is split the same way: results are unchanged."""
    return "PASSIVE" if load > cores else None


def main() -> None:
    """Entry point: run the CLI and exit with its code. The CPU numerics are pinned before anything loads torch."""
    numerics.pin()
    policy = openmp_wait_policy(os.getloadavg()[0], len(os.sched_getaffinity(0)))
    if policy and "OMP_WAIT_POLICY" not in os.environ:  # before torch loads OpenMP (nothing has yet)
        os.environ["OMP_WAIT_POLICY"] = policy  # server subprocesses inherit it
    sys.exit(run())


def run(args: Sequence[str] | None = None) -> int:
    """Run ``codequant ARGS`` (default: the process's arguments) and return its exit code: 0 success, 2 bad
    input, 3 an unreachable service. A CodequantError or a usage error is one line on stderr (a study's
    problems one line each); a bare command group prints its help on stderr and returns 2, as click does."""
    _load_plugins()
    try:
        # Without standalone mode typer raises its usage errors and returns typer.Exit's code instead of exiting.
        code = app(args=list(args) if args is not None else None, prog_name="codequant", standalone_mode=False)
    except CodequantError as exc:
        for line in str(exc).splitlines() or [exc.__class__.__name__]:
            err_console.print(f"error: {line}", markup=False)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted", markup=False)
        return 130
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors: bad option, value, command
        return _usage_error(exc)
    return code if isinstance(code, int) else 0


def _usage_error(exc: typer.TyperException) -> int:
    """Report a usage error as one line (a bare group's help as the help text) and return its exit code."""
    from pydantic import ValidationError
    from typer._click.exceptions import NoArgsIsHelpError  # typer vendors click; this one it does not re-export

    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, NoArgsIsHelpError):  # typer has printed the help (on stdout)
        if exc.format_message().strip():
            err_console.print(exc.format_message(), markup=False)
        return exc.exit_code
    message = exc.format_message().replace("Value error, ", "")
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors() and "input" in cause.errors()[0]:
        given = cause.errors()[0]["input"]
        if repr(given) not in message:
            message = f"{message.rstrip('.')}, got {given!r}"
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    err_console.print(f"error: {' '.join(message.split())}{hint}", markup=False)
    return getattr(exc, "exit_code", 2) or 2
