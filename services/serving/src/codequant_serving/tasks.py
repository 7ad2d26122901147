"""Celery task of the `generate` queue that belongs to serving: the serving agreement check's comparison (its workers
have codequant-serving beside the generator, ``codequant.queues.REQUIRES``)."""

from __future__ import annotations

from typing import Any

from codequant.celery_app import app
from codequant.payloads import AgreementRequest
from codequant.queues import AGREEMENT_TASK
from codequant_serving.agreement import compare_served


@app.task(name=AGREEMENT_TASK, acks_late=True, reject_on_worker_lost=True)
def agreement_task(payload: dict[str, Any]) -> dict[str, Any]:
    """An AgreementRequest in (a folder served here); the token comparison (``AgreementResult.to_dict``) out."""
    return compare_served(AgreementRequest.model_validate(payload)).to_dict()
