"""The `codequant` command as tests run it: in a fresh interpreter (output captured, a time limit), or in the
test's own process for commands that end before any work starts (bad invocations)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

CLI = [sys.executable, "-c", "from codequant.cli import main; main()"]


def codequant(
    *args: str | Path,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``codequant ARGS...`` run to its end within ``timeout`` seconds (``env``: its whole environment)."""
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, input=input
    )


def codequant_ok(*args: str | Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``codequant ARGS...``, which must exit 0 (else the test fails with its stderr)."""
    result = codequant(*args, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result


def codequant_in_process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``codequant ARGS...`` run in this process (``codequant.cli.run``), stdout and stderr captured: milliseconds
    instead of the second an interpreter takes to start. For invocations that stop before doing work; a command
    that starts work (threads, servers, torch) belongs in a subprocess. The environment and the warning filters
    the command sets up for itself (codequant.quiet) are restored afterwards."""
    from codequant.cli import run

    out, err = io.StringIO(), io.StringIO()
    environment = dict(os.environ)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        try:
            code = run([str(a) for a in args])
        finally:
            os.environ.clear()
            os.environ.update(environment)
    return subprocess.CompletedProcess(["codequant", *map(str, args)], code, out.getvalue(), err.getvalue())
