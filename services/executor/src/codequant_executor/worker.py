"""The execute worker checks its sandbox before it takes any task: without network isolation it refuses to
start (untrusted programs could reach Redis and every service on its network) unless
``$CODEQUANT_EXECUTOR_INSECURE`` allows it."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from typing import Any

from celery import signals

from codequant.queues import EXECUTE
from codequant_executor.pool import INSECURE_ENV, insecure_from_env
from codequant_executor.sandbox import Sandbox


def isolation_problem() -> str:
    """Why this host cannot run untrusted programs safely ("" when it can, or when told to run anyway)."""
    if insecure_from_env():
        return ""
    # Quietly: the sandbox's warning would repeat what the refusal says, and the operator gets one line.
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            sandbox = Sandbox()
    finally:
        logging.disable(logging.NOTSET)
    if sandbox.isolated:
        return ""
    return (
        f"refusing to run untrusted code without network isolation ({sandbox.bwrap_problem}); in a container "
        f"give it compose.yaml's executor security_opt (docs/deployment.md), or set {INSECURE_ENV}=1 to run anyway"
    )


@signals.worker_init.connect
def refuse_without_isolation(sender: Any = None, **_: Any) -> None:
    """Stop a worker that consumes the execute queue on a host where programs would have network access."""
    consumed = sender.app.amqp.queues.consume_from if sender is not None else None
    if EXECUTE not in (consumed or {}):
        return
    problem = isolation_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(3)
