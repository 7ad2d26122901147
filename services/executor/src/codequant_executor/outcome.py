"""Turning a finished process into a status (shared rules; each language adds its own error parsing)."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from codequant_executor.sandbox import Outcome
from codequant_executor.status import Status

EARLY_EXIT = "codequant: the program exited before its tests completed\n"
FORGED = "codequant: something other than the harness wrote to its proof channel\n"


@dataclass
class Verdict:
    """The executor's answer for one program."""

    status: Status
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float

    @property
    def passed(self) -> bool:
        return self.status is Status.OK


def proven(outcome: Outcome, secret: bytes) -> tuple[bool, str]:
    """Whether the harness proved that the tests completed, and a note for stderr when an exit with status 0
    came without that proof."""
    if outcome.proof == secret:
        return True, ""
    if outcome.exit_code != 0:
        return False, ""
    return False, FORGED if outcome.proof else EARLY_EXIT


def generic_status(outcome: Outcome, completed: bool) -> Status | None:
    """The status decided without language knowledge, or None when the error text must be read."""
    if outcome.memory_exceeded:
        return Status.MEMORY_LIMIT
    if outcome.timed_out:
        return Status.TIMEOUT
    if outcome.output_exceeded:
        return Status.OUTPUT_LIMIT
    if outcome.exit_code == 0:
        return Status.OK if completed else Status.EXCEPTION
    if outcome.exit_code is not None and outcome.exit_code < 0:
        return Status.TIMEOUT if -outcome.exit_code == signal.SIGXCPU else Status.KILLED
    return None
