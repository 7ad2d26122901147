"""Celery task of the `report` queue."""

from __future__ import annotations

from pathlib import Path

from codequant.celery_app import app
from codequant.queues import TASK_NAMES
from codequant_reporter.report import build_report


@app.task(name=TASK_NAMES["report"], acks_late=True)
def report_task(study_id: str, store_url: str, out_dir: str, formats: list[str]) -> dict[str, str]:
    """Build a study's report from the store into ``out_dir``; returns the files written."""
    written = build_report(study_id, Path(out_dir), formats, store_url=store_url)
    return {name: str(path) for name, path in written.items()}
