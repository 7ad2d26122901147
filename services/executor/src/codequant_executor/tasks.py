"""Celery task of the `execute` queue. The executor container reaches only Redis, so results travel back
through the result backend and the orchestrator stores them; the task is idempotent by program hash."""

from __future__ import annotations

from typing import Any

from codequant.celery_app import app
from codequant.payloads import ExecuteRequest
from codequant.queues import TASK_NAMES
from codequant_executor import worker  # noqa: F401  (the worker refuses to start without network isolation)
from codequant_executor.api import execute_batch


@app.task(name=TASK_NAMES["execute"], acks_late=True, reject_on_worker_lost=True)
def execute_task(payload: dict[str, Any]) -> dict[str, Any]:
    """An ExecuteRequest in, an ExecuteResult out (status, passed, exit_code, stdout, stderr, duration_s)."""
    return execute_batch(ExecuteRequest.model_validate(payload)).model_dump(mode="json")
