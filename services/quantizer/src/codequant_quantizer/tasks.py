"""Celery task of the `quantize` queue: ``prepare_variant`` on a JSON payload."""

from __future__ import annotations

from typing import Any

from codequant.celery_app import app
from codequant.payloads import PrepareRequest
from codequant.queues import TASK_NAMES
from codequant_quantizer.stage import prepare_variant


@app.task(name=TASK_NAMES["quantize"], acks_late=True, reject_on_worker_lost=True)
def quantize_task(payload: dict[str, Any]) -> dict[str, Any]:
    """A PrepareRequest in, a PrepareResult out (idempotent: stored work is found, interrupted work resumes)."""
    return prepare_variant(PrepareRequest.model_validate(payload)).model_dump(mode="json")
