"""Bookkeeping in the results store: studies, variants and stage jobs (no chords, no in-memory state).

Everything a restarted orchestrator needs is here, so a study resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from codequant.keys import stable_hash
from codequant.store import Completion, Job, JobEnvironment, Store, StudyVariant, Variant
from codequant.store import Study as StudyRow
from codequant_orchestrator.cancellation import StudyCancelled
from codequant_orchestrator.plan import STAGES, Plan, VariantPlan
from codequant_orchestrator.records import wanted_completion_keys


def register_study(store: Store, plan: Plan, spec_yaml: str) -> None:
    """Record the study, its variants and one pending job per stage unit (existing rows are kept)."""
    study = plan.study
    with store.session() as session:
        row = session.get(StudyRow, study.name)
        if row is None:
            session.add(StudyRow(id=study.name, spec_yaml=spec_yaml, spec_hash=stable_hash(spec_yaml)))
        elif row.spec_yaml != spec_yaml:
            row.spec_yaml, row.spec_hash = spec_yaml, stable_hash(spec_yaml)
    store.insert_ignore(
        Variant,
        [
            {
                "key": v.key,
                "model_name": v.model.name,
                "variant_name": v.variant.name,
                "method": v.variant.method,
                "config": v.variant.method_config(),
                "model_source": v.model.source(),
            }
            for v in plan.variants
        ],
    )
    with store.session() as session:
        linked = set(session.scalars(select(StudyVariant.variant_key).where(StudyVariant.study_id == study.name)))
        for v in plan.variants:
            if v.key not in linked:
                session.add(StudyVariant(study_id=study.name, variant_key=v.key))
                linked.add(v.key)
    # Every row names every column: a multi-row INSERT takes its columns from the first row.
    jobs = [
        {
            "key": plan.job_key("report"),
            "study_id": study.name,
            "stage": "report",
            "variant_key": None,
            "benchmark": None,
        }
    ]
    for v in plan.variants:
        jobs.append(
            {
                "key": plan.job_key("quantize", v),
                "study_id": study.name,
                "stage": "quantize",
                "variant_key": v.key,
                "benchmark": None,
            }
        )
        for name in plan.benchmarks:
            for stage in ("generate", "execute"):
                jobs.append(
                    {
                        "key": plan.job_key(stage, v, name),
                        "study_id": study.name,
                        "stage": stage,
                        "variant_key": v.key,
                        "benchmark": name,
                    }
                )
    store.insert_ignore(Job, jobs)


def set_study_status(store: Store, study_id: str, status: str, error: str | None = None) -> None:
    with store.session() as session:
        session.execute(update(StudyRow).where(StudyRow.id == study_id).values(status=status, error=error))


def move_study(store: Store, study_id: str, before: tuple[str, ...], after: str, error: str | None = None) -> bool:
    """Set the study's status to ``after`` if it is one of ``before`` (one statement: no other process can change
    it in between); returns whether it moved."""
    with store.session() as session:
        moved = session.execute(
            update(StudyRow)
            .where(StudyRow.id == study_id, StudyRow.status.in_(before))
            .values(status=after, error=error)
        )
        return moved.rowcount == 1


def job_status(store: Store, key: str) -> str | None:
    with store.session() as session:
        return session.scalar(select(Job.status).where(Job.key == key))


def set_job(store: Store, key: str, **values: Any) -> None:
    with store.session() as session:
        session.execute(update(Job).where(Job.key == key).values(**values))


@contextmanager
def running_job(store: Store, key: str) -> Iterator[None]:
    """Mark a job running; on exit add the elapsed seconds and mark it done, cancelled, or failed with the error."""
    start = time.monotonic()
    with store.session() as session:
        job = session.get(Job, key)
        assert job is not None, f"unknown job {key}"
        job.status, job.attempts, job.error = "running", job.attempts + 1, None
        job.started_at = job.started_at or datetime.now(UTC)
    try:
        yield
    except StudyCancelled:
        _finish(store, key, "cancelled", time.monotonic() - start, None)
        raise
    except BaseException as exc:
        _finish(store, key, "failed", time.monotonic() - start, f"{exc.__class__.__name__}: {exc}")
        raise
    _finish(store, key, "done", time.monotonic() - start, None)


def _finish(store: Store, key: str, status: str, seconds: float, error: str | None) -> None:
    with store.session() as session:
        job = session.get(Job, key)
        assert job is not None
        job.status, job.error, job.seconds = status, error, job.seconds + seconds
        job.finished_at = datetime.now(UTC)


def record_variant(store: Store, variant: VariantPlan, **values: Any) -> None:
    """Update a variant's row (status, artifact_path, footprint, error)."""
    with store.session() as session:
        session.execute(update(Variant).where(Variant.key == variant.key).values(**values))


def record_environment(store: Store, study_id: str, job_key: str, stage: str, environment: dict[str, str]) -> None:
    """Keep the software and hardware a worker reported for a job (the first report of a job is kept)."""
    if environment:
        store.insert_ignore(
            JobEnvironment, [{"job_key": job_key, "study_id": study_id, "stage": stage, "environment": environment}]
        )


def stage_progress(store: Store, plan: Plan) -> dict[str, dict[str, int]]:
    """Per stage: units done, total and failed jobs (quantize: variants; generate and execute: samples)."""
    wanted = [
        key for v in plan.variants for b in plan.benchmarks for key in wanted_completion_keys(plan, v, b).values()
    ]
    generated = executed = 0
    with store.session() as session:
        jobs = session.execute(select(Job.key, Job.stage, Job.status).where(Job.study_id == plan.study.name)).all()
        for start in range(0, len(wanted), 500):
            total, with_execution = session.execute(
                select(func.count(), func.count(Completion.execution_key)).where(
                    Completion.key.in_(wanted[start : start + 500])
                )
            ).one()
            generated, executed = generated + total, executed + with_execution
    status = {key: state for key, _stage, state in jobs}
    failed = {stage: sum(1 for _key, s, state in jobs if s == stage and state == "failed") for stage in STAGES}
    return {
        "quantize": {
            "done": sum(status.get(plan.job_key("quantize", v)) == "done" for v in plan.variants),
            "total": len(plan.variants),
            "failed": failed["quantize"],
        },
        "generate": {"done": generated, "total": len(wanted), "failed": failed["generate"]},
        "execute": {"done": executed, "total": len(wanted), "failed": failed["execute"]},
        "report": {"done": int(status.get(plan.job_key("report")) == "done"), "total": 1, "failed": failed["report"]},
    }
