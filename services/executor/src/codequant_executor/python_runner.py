"""Python programs: the real interpreter in isolated mode, inside the sandbox."""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

from codequant.limits import Limits
from codequant_executor.forkserver import ForkServers
from codequant_executor.outcome import Verdict, generic_status, proven
from codequant_executor.sandbox import PROOF_FD, Outcome, Sandbox
from codequant_executor.status import Status

_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")
_SYNTAX = {"SyntaxError", "IndentationError", "TabError"}
NPROC = 64
_NO_MEMORY = re.compile(r"^(?:OSError|MemoryError): \[Errno 12\]", re.MULTILINE)


HARNESS = Path(__file__).resolve().parent / "harness"


def interpreter() -> tuple[Path, Path]:
    """The installation folder of this interpreter and its real binary relative to it (not a venv or pyenv
    shim: a shim costs ~100 ms per run and may not be visible in the sandbox)."""
    prefix = Path(sys.base_prefix).resolve()
    binary = Path(os.path.realpath(sys.executable))
    if not binary.is_relative_to(prefix):
        prefix = binary.parent.parent
    return prefix, binary.relative_to(prefix)


class PythonRunner:
    """Runs ``program`` through ``harness/run_python.py``, which proves on a separate descriptor, with a per-run
    secret, that the tests completed; an early ``sys.exit(0)`` or ``os._exit(0)`` does not pass."""

    def __init__(self, sandbox: Sandbox, folder: Path | None = None) -> None:
        """``folder`` (private to the executor) holds the slots' fork-server folders; without it, or where fork
        servers cannot be used (``ForkServers.usable``), each program starts a fresh sandboxed interpreter."""
        self.sandbox = sandbox
        prefix, binary = interpreter()
        self.mounts = sandbox.mounts([prefix, HARNESS])
        self.interpreter = f"{self.mounts[0].inside}/{binary}"
        self.harness = f"{self.mounts[1].inside}/run_python.py"
        self.servers = None
        if folder is not None and ForkServers.usable(sandbox):
            zygote = f"{self.mounts[1].inside}/zygote.py"
            self.servers = ForkServers(
                sandbox, self.interpreter, zygote, self.mounts, folder, name="python", proc=False
            )

    def run(self, program: str, limits: Limits, slot: int, tests_line: int = 0) -> Verdict:
        """Run ``program``; ``tests_line`` is the 1-based first line of its tests (0: a bare program)."""
        secret = secrets.token_hex(16).encode() + b"\n"
        if self.servers is not None:
            outcome = self.servers.python(program, limits, slot, tests_line, secret, NPROC)
        else:
            outcome = self._fresh(program, limits, slot, tests_line, secret)
        completed, note = proven(outcome, secret)
        status = generic_status(outcome, completed) or _classify(outcome.stderr)
        return Verdict(status, outcome.exit_code, outcome.stdout, outcome.stderr + note, outcome.duration_s)

    def _fresh(self, program: str, limits: Limits, slot: int, tests_line: int, secret: bytes) -> Outcome:
        """Run ``program`` in a fresh sandboxed interpreter."""
        with self.sandbox.scratch() as workdir:
            (workdir / "program.py").write_text(program, encoding="utf-8")
            argv = [
                self.interpreter,
                "-I",
                "-S",
                self.harness,
                f"{self.sandbox.inside_workdir(workdir)}/program.py",
                str(tests_line),
                PROOF_FD,
            ]
            return self.sandbox.run(
                argv,
                workdir=workdir,
                mounts=self.mounts,
                limits=limits,
                slot=slot,
                nproc=NPROC,
                memory="address-space",
                stdin=secret,
                proof=True,
                proc=False,
            )

    def close(self) -> None:
        if self.servers is not None:
            self.servers.close()


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
    if name == "MemoryError" or (name == "OSError" and _NO_MEMORY.search(stderr)):
        return Status.MEMORY_LIMIT  # ENOMEM: the memory rlimits, or memory the sandbox does not hand out
    return Status.EXCEPTION
