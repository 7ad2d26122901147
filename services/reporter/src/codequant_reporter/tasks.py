"""Celery task of the `report` queue: ``build_report`` on a JSON payload."""

from __future__ import annotations

from typing import Any

from codequant.celery_app import app
from codequant.payloads import ReportRequest
from codequant.queues import TASK_NAMES
from codequant_reporter.report import build_report


@app.task(name=TASK_NAMES["report"], acks_late=True)
def report_task(payload: dict[str, Any]) -> dict[str, Any]:
    """A ReportRequest in, a ReportResult (the files written) out."""
    return build_report(ReportRequest.model_validate(payload)).model_dump(mode="json")
