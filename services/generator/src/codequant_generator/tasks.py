"""Celery tasks of the `generate` and `generate-remote` queues: ``generate_variant`` on a JSON payload.

The two queues differ in what the worker must have: `generate` serves the variant itself (codequant-serving
and, for real models, a GPU), `generate-remote` samples an external endpoint (nothing but this package).
"""

from __future__ import annotations

from typing import Any

from codequant.celery_app import app
from codequant.payloads import GenerateRequest
from codequant.queues import GENERATE, GENERATE_REMOTE, TASK_NAMES
from codequant_generator.stage import generate_variant


@app.task(name=TASK_NAMES[GENERATE], acks_late=True, reject_on_worker_lost=True)
def generate_task(payload: dict[str, Any]) -> dict[str, Any]:
    """A GenerateRequest for a variant served here, in; a GenerateResult out."""
    return generate_variant(GenerateRequest.model_validate(payload)).model_dump(mode="json")


@app.task(name=TASK_NAMES[GENERATE_REMOTE], acks_late=True, reject_on_worker_lost=True)
def generate_remote_task(payload: dict[str, Any]) -> dict[str, Any]:
    """A GenerateRequest for a variant behind an external endpoint, in; a GenerateResult out."""
    return generate_variant(GenerateRequest.model_validate(payload)).model_dump(mode="json")
