"""Celery tasks of the `execute` queue. The executor container reaches only Redis, so results travel back
through the result backend and the orchestrator stores them; the tasks are idempotent (by program hash for
executions; the verdict checks are stored by the orchestrator under their own keys)."""

from __future__ import annotations

from typing import Any

from codequant.celery_app import app
from codequant.payloads import ExecuteRequest, FlakeRequest, SelfCheckRequest
from codequant.queues import FLAKES_TASK, SELF_CHECK_TASK, TASK_NAMES
from codequant_executor import worker  # noqa: F401  (the worker refuses to start without network isolation)
from codequant_executor.api import execute_batch
from codequant_executor.verdict_checks import check_flakes, check_references


@app.task(name=TASK_NAMES["execute"], acks_late=True, reject_on_worker_lost=True)
def execute_task(payload: dict[str, Any]) -> dict[str, Any]:
    """An ExecuteRequest in, an ExecuteResult out (status, passed, exit_code, stdout, stderr, duration_s)."""
    return execute_batch(ExecuteRequest.model_validate(payload)).model_dump(mode="json")


@app.task(name=SELF_CHECK_TASK, acks_late=True, reject_on_worker_lost=True)
def self_check_task(payload: dict[str, Any]) -> dict[str, Any]:
    """A SelfCheckRequest in; the self-check's result (checks, runtimes, calibrated limits, provenance) out."""
    return check_references(SelfCheckRequest.model_validate(payload))


@app.task(name=FLAKES_TASK, acks_late=True, reject_on_worker_lost=True)
def flakes_task(payload: dict[str, Any]) -> dict[str, Any]:
    """A FlakeRequest in; every sampled failure's runs (the stored verdict first) and the flip rate out."""
    return check_flakes(FlakeRequest.model_validate(payload))
