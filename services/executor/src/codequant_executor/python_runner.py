"""Python programs: the real interpreter in isolated mode, inside the sandbox."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from codequant.limits import Limits
from codequant_executor.forkserver import ForkServers
from codequant_executor.runner import HARNESS, Runner, RunnerSetup
from codequant_executor.sandbox import PROOF_FD, Outcome
from codequant_executor.status import Status

_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")
_SYNTAX = {"SyntaxError", "IndentationError", "TabError"}
_NO_MEMORY = re.compile(r"^(?:OSError|MemoryError): \[Errno 12\]", re.MULTILINE)


def interpreter() -> tuple[Path, Path]:
    """The installation folder of this interpreter and its real binary relative to it (not a venv or pyenv
    shim: a shim costs ~100 ms per run and may not be visible in the sandbox)."""
    prefix = Path(sys.base_prefix).resolve()
    binary = Path(os.path.realpath(sys.executable))
    if not binary.is_relative_to(prefix):
        prefix = binary.parent.parent
    return prefix, binary.relative_to(prefix)


class PythonRunner(Runner):
    """Runs ``program`` through ``harness/run_python.py``, which proves on a separate descriptor, with a per-run
    secret, that the tests completed; an early ``sys.exit(0)`` or ``os._exit(0)`` does not pass."""

    language = "python"

    def __init__(self, setup: RunnerSetup) -> None:
        """With ``setup.folder`` (private to the executor: the slots' fork-server folders), where fork servers can
        be used (``ForkServers.usable``), programs run in a slot's fork server; otherwise each program starts a
        fresh sandboxed interpreter."""
        prefix, binary = interpreter()
        super().__init__(setup, setup.sandbox.mounts([prefix, HARNESS]))
        self.interpreter = f"{self.mounts[0].inside}/{binary}"
        self.harness = f"{self.mounts[1].inside}/run_python.py"
        self.servers = None
        if setup.folder is not None and ForkServers.usable(self.sandbox):
            zygote = f"{self.mounts[1].inside}/zygote.py"
            self.servers = ForkServers(
                self.sandbox, self.interpreter, zygote, self.mounts, setup.folder, name="python", proc=False
            )

    def execute(self, program: str, limits: Limits, slot: int, tests_line: int, secret: bytes) -> Outcome:
        if self.servers is not None:
            return self.servers.python(program, limits, slot, tests_line, secret, self.nproc)
        with self.scratch(program) as (workdir, source):
            argv = [self.interpreter, "-I", "-S", self.harness, source, str(tests_line), PROOF_FD]
            return self.sandboxed(argv, workdir, limits, slot, secret)

    def classify(self, outcome: Outcome) -> Status:
        return _classify(outcome.stderr)

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
