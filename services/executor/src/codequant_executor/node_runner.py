"""JavaScript programs: Node.js runs them through ``harness/run_node.js`` in the sandbox."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from codequant.limits import Limits
from codequant_executor.outcome import generic_status
from codequant_executor.runner import HARNESS, Runner, RunnerSetup
from codequant_executor.sandbox import PROOF_FD, Outcome
from codequant_executor.status import Status

#: V8's own memory beside its JavaScript heap (code, stacks, buffers): the heap gets the rest of the limit.
NODE_OVERHEAD_MB = 128
_UNCAUGHT = re.compile(r"^(\w*Error)\b(?: \[(\w+)\])?", re.MULTILINE)
#: What the harness prints first when the program does not parse.
NOT_COMPILED = "codequant: the program does not compile\n"
_HEAP = ("JavaScript heap out of memory", "Reached heap limit", "Array buffer allocation failed")


def node() -> str:
    """The node on PATH (Debian: nodejs)."""
    found = shutil.which("node") or shutil.which("nodejs")
    if found is None:
        raise FileNotFoundError("node not found: install Node.js (Debian: nodejs; scripts/setup-system.sh does)")
    return os.path.realpath(found)


class NodeRunner(Runner):
    """Runs ``program`` under the harness, which proves on a separate descriptor, with a per-run secret, that
    the program's last line (after the tests) ran; ``process.exit(0)`` before that does not pass.

    V8 reserves far more address space than it uses, so memory is bounded by the data-segment limit and the
    heap size (``--max-old-space-size``), as for the JVM.
    """

    language = "javascript"
    memory = "data"
    bare_exit_passes = True  # the harness adds no end call to a bare program
    commands = ("node",)

    def __init__(self, setup: RunnerSetup) -> None:
        binary = Path(node())
        folders = [HARNESS] if binary.is_relative_to("/usr") else [HARNESS, binary.parent]
        super().__init__(setup, setup.sandbox.mounts(folders))
        self.node = str(binary) if len(folders) == 1 else f"{self.mounts[1].inside}/{binary.name}"
        self.harness = f"{self.mounts[0].inside}/run_node.js"

    def execute(self, program: str, limits: Limits, slot: int, tests_line: int, secret: bytes) -> Outcome:
        heap = max(32, limits.memory_mb - NODE_OVERHEAD_MB)
        with self.scratch(program) as (workdir, source):
            argv = [self.node, f"--max-old-space-size={heap}", self.harness, source, str(tests_line), PROOF_FD]
            return self.sandboxed(argv, workdir, limits, slot, secret)

    def status(self, outcome: Outcome, completed: bool) -> Status:
        status = generic_status(outcome, completed)
        if status is Status.KILLED and any(text in outcome.stderr for text in _HEAP):
            return Status.MEMORY_LIMIT  # V8 aborts when its heap limit is reached
        return status or self.classify(outcome)

    def classify(self, outcome: Outcome) -> Status:
        return _classify(outcome.stderr)


def _classify(stderr: str) -> Status:
    """Status of a Node.js program that exited non-zero, from the error it reported."""
    if stderr.startswith(NOT_COMPILED):
        return Status.SYNTAX_ERROR
    if any(text in stderr for text in _HEAP):
        return Status.MEMORY_LIMIT
    names = _UNCAUGHT.findall(stderr)
    name, code = names[0] if names else ("", "")
    if name == "AssertionError" or code == "ERR_ASSERTION":
        return Status.FAILURE
    return Status.EXCEPTION
