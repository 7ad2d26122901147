"""Python programs: the real interpreter in isolated mode, inside the sandbox."""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

from codequant.limits import Limits
from codequant_executor.outcome import EARLY_EXIT, Verdict, generic_status, strip_marker
from codequant_executor.sandbox import Sandbox
from codequant_executor.status import Status

_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")
_SYNTAX = {"SyntaxError", "IndentationError", "TabError"}


class PythonRunner:
    """Runs ``program`` through ``harness/run_python.py``, which prints a per-run secret marker only when the
    tests completed, so an early ``sys.exit(0)`` or ``os._exit(0)`` does not pass."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        # The real binary, not a venv or pyenv shim (a shim costs ~100 ms per run and may not be visible).
        prefix = Path(sys.base_prefix).resolve()
        binary = Path(os.path.realpath(sys.executable))
        if not binary.is_relative_to(prefix):
            prefix = binary.parent.parent
        harness = Path(__file__).resolve().parent / "harness"
        self.mounts = sandbox.mounts([prefix, harness])
        self.interpreter = f"{self.mounts[0].inside}/{binary.relative_to(prefix)}"
        self.harness = f"{self.mounts[1].inside}/run_python.py"

    def run(self, program: str, limits: Limits, slot: int, tests_line: int = 0) -> Verdict:
        """Run ``program``; ``tests_line`` is the 1-based first line of its tests (0: unknown)."""
        marker = f"codequant-tests-completed-{secrets.token_hex(16)}"
        workdir = self.sandbox.workdir()
        try:
            (workdir / "program.py").write_text(program, encoding="utf-8")
            argv = [
                self.interpreter,
                "-I",
                "-S",
                self.harness,
                f"{self.sandbox.inside_workdir(workdir)}/program.py",
                marker,
                str(tests_line),
            ]
            outcome = self.sandbox.run(
                argv, workdir=workdir, mounts=self.mounts, limits=limits, slot=slot, nproc=64, address_space=True
            )
        finally:
            self.sandbox.cleanup(workdir)
        stdout, completed = strip_marker(outcome.stdout, marker)
        status = generic_status(outcome, completed) or _classify(outcome.stderr)
        stderr = outcome.stderr + (EARLY_EXIT if outcome.exit_code == 0 and not completed else "")
        return Verdict(status, outcome.exit_code, stdout, stderr, outcome.duration_s)


def _classify(stderr: str) -> Status:
    """Status of a Python program that exited non-zero, from the last exception line of its stderr."""
    name = ""
    for line in reversed(stderr.splitlines()):
        match = _EXCEPTION_LINE.match(line)
        if match:
            name = match.group(1).rsplit(".", 1)[-1]
            break
    if name in _SYNTAX and "Traceback (most recent call last)" not in stderr:
        return Status.SYNTAX_ERROR  # raised while compiling the program, before anything ran
    if name == "AssertionError":
        return Status.FAILURE
    if name == "MemoryError":
        return Status.MEMORY_LIMIT
    return Status.EXCEPTION
