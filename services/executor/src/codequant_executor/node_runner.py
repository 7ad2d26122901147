"""JavaScript programs: Node.js runs them through ``harness/run_node.js`` in the sandbox."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

from codequant.limits import Limits
from codequant_executor.outcome import Verdict, generic_status, proven
from codequant_executor.sandbox import PROOF_FD, Sandbox
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


class NodeRunner:
    """Runs ``program`` under the harness, which proves on a separate descriptor, with a per-run secret, that
    the program's last line (after the tests) ran; ``process.exit(0)`` before that does not pass.

    V8 reserves far more address space than it uses, so memory is bounded by the data-segment limit and the
    heap size (``--max-old-space-size``), as for the JVM.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        binary = Path(node())
        harness = Path(__file__).resolve().parent / "harness"
        folders = [harness] if binary.is_relative_to("/usr") else [harness, binary.parent]
        self.mounts = sandbox.mounts(folders)
        self.node = str(binary) if len(folders) == 1 else f"{self.mounts[1].inside}/{binary.name}"
        self.harness = f"{self.mounts[0].inside}/run_node.js"

    def run(self, program: str, limits: Limits, slot: int, tests_line: int = 0) -> Verdict:
        secret = secrets.token_hex(16).encode() + b"\n"
        heap = max(32, limits.memory_mb - NODE_OVERHEAD_MB)
        with self.sandbox.scratch() as workdir:
            (workdir / "program.js").write_text(program, encoding="utf-8")
            argv = [
                self.node,
                f"--max-old-space-size={heap}",
                self.harness,
                f"{self.sandbox.inside_workdir(workdir)}/program.js",
                str(tests_line),
                PROOF_FD,
            ]
            outcome = self.sandbox.run(
                argv,
                workdir=workdir,
                mounts=self.mounts,
                limits=limits,
                slot=slot,
                nproc=64,
                memory="data",
                stdin=secret,
                proof=True,
                proc=False,
            )
        completed, note = proven(outcome, secret)
        if not tests_line and outcome.exit_code == 0:
            completed, note = True, ""  # a bare program passes on exit 0 (the harness adds no end call)
        status = generic_status(outcome, completed)
        if status is Status.KILLED and any(text in outcome.stderr for text in _HEAP):
            status = Status.MEMORY_LIMIT  # V8 aborts when its heap limit is reached
        status = status or _classify(outcome.stderr)
        return Verdict(status, outcome.exit_code, outcome.stdout, outcome.stderr + note, outcome.duration_s)


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
