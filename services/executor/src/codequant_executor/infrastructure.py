"""What belongs to the executor rather than the program: a record's own (calibrated) limits, and the verdicts the
executor caused (``Status.SANDBOX_ERROR``: the sandbox did not start, a compile server died, the disk is full),
which are run again and never count as the program's."""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from codequant.errors import InputError
from codequant.limits import Limits
from codequant_executor.outcome import Verdict
from codequant_executor.status import INFRASTRUCTURE

if TYPE_CHECKING:
    from codequant_executor.pool import ExecutorPool, Job

#: Times a verdict the executor caused is run again before it is reported as such.
RETRIES = 2


def limits_of(record: dict[str, Any], limits: Limits, where: str) -> Limits:
    """``limits``, with the record's own ``timeout_s`` (a calibrated per-problem limit) when it has one."""
    own = record.get("timeout_s")
    if own is None:
        return limits
    try:
        return dataclasses.replace(limits, timeout_s=own)
    except ValueError as exc:
        raise InputError(f"{where}: field 'timeout_s': {exc}") from None


def retry_infrastructure(
    pool: ExecutorPool, job: Job, limits: Limits, verdict: Verdict, stop: threading.Event | None = None
) -> tuple[Verdict, int]:
    """The verdict, run again while the executor caused it (at most ``RETRIES`` times), and the retries made."""
    retries = 0
    while verdict.status in INFRASTRUCTURE and retries < RETRIES and not (stop and stop.is_set()):
        retries += 1
        verdict = pool.run_one(job[0], job[1], limits, *job[2:])
    return verdict, retries
