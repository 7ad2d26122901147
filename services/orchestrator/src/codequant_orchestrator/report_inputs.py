"""Whether a study's report is up to date: a digest of everything the report is made of, kept beside the study's
output after each report, so a re-run that changed nothing does not import the reporter and redraw every figure.

The digest covers the stored study spec, its variants (status, footprint, error), its jobs (status and seconds)
and their environment records, the serving measurements, every completion of its variants with its execution's
outcome, the study's verdict checks (self-check, flakes), the reporter's version and the formats asked for. The
report job's own row and environment are left out: they change by writing the report.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from sqlalchemy import select

from codequant.keys import stable_hash
from codequant.store import (
    Completion,
    Execution,
    Job,
    JobEnvironment,
    ServingMeasurement,
    Store,
    Variant,
    Verification,
)
from codequant.store import Study as StudyRow
from codequant_orchestrator.plan import Plan

#: The marker in the study's output folder: the digest the report was written from, and its files.
MARKER = ".report-inputs.json"


def report_digest(store: Store, plan: Plan, report_job: str, formats: list[str]) -> str:
    """The digest of what the study's report would be made of now."""
    study_id = plan.study.name
    keys = sorted({v.key for v in plan.variants})
    with store.session() as session:
        spec = session.scalar(select(StudyRow.spec_yaml).where(StudyRow.id == study_id))
        variants = session.execute(
            select(Variant.key, Variant.status, Variant.footprint, Variant.error)
            .where(Variant.key.in_(keys))
            .order_by(Variant.key)
        ).all()
        jobs = session.execute(
            select(Job.key, Job.status, Job.seconds)
            .where(Job.study_id == study_id, Job.key != report_job)
            .order_by(Job.key)
        ).all()
        environments = session.execute(
            select(JobEnvironment.job_key, JobEnvironment.environment)
            .where(JobEnvironment.study_id == study_id, JobEnvironment.job_key != report_job)
            .order_by(JobEnvironment.job_key)
        ).all()
        measured = session.scalars(
            select(ServingMeasurement)
            .where(ServingMeasurement.variant_key.in_(keys))
            .order_by(ServingMeasurement.variant_key)
        ).all()
        serving = [{c.key: getattr(m, c.key) for c in m.__table__.columns if c.key != "updated_at"} for m in measured]
        outcomes = session.execute(
            select(Completion.key, Completion.execution_key, Execution.passed, Execution.status)
            .outerjoin(Execution, Execution.key == Completion.execution_key)
            .where(Completion.variant_key.in_(keys))
            .order_by(Completion.key)
        ).all()
        verifications = session.execute(
            select(Verification.key, Verification.result)
            .where(Verification.study_id == study_id)
            .order_by(Verification.key)
        ).all()
    return stable_hash(
        {
            "spec": spec,
            "variants": [list(row) for row in variants],
            "jobs": [list(row) for row in jobs],
            "environments": [list(row) for row in environments],
            "serving": serving,
            "outcomes": [list(row) for row in outcomes],
            "verifications": [list(row) for row in verifications],
            "reporter": metadata.version("codequant-reporter"),
            "formats": formats,
        }
    )


def up_to_date(out_dir: Path, digest: str) -> bool:
    """Whether the report in ``out_dir`` was written from ``digest`` and all its files are still there."""
    marker = out_dir / MARKER
    if not marker.is_file():
        return False
    try:
        saved = json.loads(marker.read_text())
    except ValueError:
        return False
    files = saved.get("files") or []
    return saved.get("digest") == digest and bool(files) and all(Path(f).is_file() for f in files)


def remember(out_dir: Path, digest: str, files: list[str]) -> None:
    """Record that the report's ``files`` were written from ``digest`` (replaced atomically)."""
    tmp = out_dir / f"{MARKER}.tmp"
    tmp.write_text(json.dumps({"digest": digest, "files": sorted(files)}))
    tmp.replace(out_dir / MARKER)
