"""Tables of the results store. Every row of work is keyed deterministically (codequant.keys)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every store table."""


class Study(Base):
    """A submitted study: its spec and overall state."""

    __tablename__ = "studies"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    spec_yaml: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str] = mapped_column(String(64))
    #: pending | running | cancelling | cancelled | done | failed
    status: Mapped[str] = mapped_column(String(20), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Variant(Base):
    """A model variant (baseline or quantized), shared by every study that uses the same key."""

    __tablename__ = "variants"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    variant_name: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(40))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    artifact_path: Mapped[str | None] = mapped_column(Text)
    footprint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class StudyVariant(Base):
    """Which variants belong to which study."""

    __tablename__ = "study_variants"
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    variant_key: Mapped[str] = mapped_column(ForeignKey("variants.key"), primary_key=True)


class Completion(Base):
    """One sampled completion, keyed by variant, problem, sample index and sampling parameters."""

    __tablename__ = "completions"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    variant_key: Mapped[str] = mapped_column(ForeignKey("variants.key"))
    benchmark: Mapped[str] = mapped_column(String(100))
    problem: Mapped[str] = mapped_column(String(200))
    sample: Mapped[int] = mapped_column(Integer)
    completion: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(40))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_s: Mapped[float | None] = mapped_column(Float)
    execution_key: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_completions_variant_benchmark", "variant_key", "benchmark"),)


class ChatAnswer(Base):
    """The whole answer behind an instruct-mode completion (whose ``completion`` is the code extracted from it).

    A table of its own, so stores made before prompt modes existed gain it without a migration."""

    __tablename__ = "chat_answers"
    key: Mapped[str] = mapped_column(ForeignKey("completions.key", ondelete="CASCADE"), primary_key=True)
    answer: Mapped[str] = mapped_column(Text)
    extracted: Mapped[bool] = mapped_column(Boolean, doc="whether the problem's function was found in the answer")


class ServingMeasurement(Base):
    """What serving one variant cost while its completions were generated, and how well it models held-out code.

    One row per variant, added to when generation resumes. A table of its own, so older stores gain it without a
    migration. ``memory`` and ``perplexity`` come from `codequant serve`'s ``/codequant`` routes; an endpoint
    without them leaves them empty and says so in ``note``."""

    __tablename__ = "serving_measurements"
    variant_key: Mapped[str] = mapped_column(ForeignKey("variants.key"), primary_key=True)
    server: Mapped[str] = mapped_column(String(200))
    requests: Mapped[int] = mapped_column(Integer, default=0)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, doc="None when some request's count is unknown")
    generation_s: Mapped[float] = mapped_column(Float, default=0.0, doc="wall-clock seconds of generation")
    latencies_s: Mapped[list[float]] = mapped_column(JSON, default=list, doc="each request's latency")
    memory: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="peak/current bytes as served and their source")
    perplexity: Mapped[float | None] = mapped_column(Float)
    perplexity_tokens: Mapped[int | None] = mapped_column(Integer)
    perplexity_set: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text, doc="why memory or perplexity is missing")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Execution(Base):
    """The outcome of running one program, keyed by program hash, language and limits."""

    __tablename__ = "executions"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    passed: Mapped[bool] = mapped_column(Boolean)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    stdout: Mapped[str] = mapped_column(Text, default="")
    stderr: Mapped[str] = mapped_column(Text, default="")
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Comparison(Base):
    """A variant-vs-baseline comparison on one benchmark, as computed by the reporter."""

    __tablename__ = "comparisons"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    benchmark: Mapped[str] = mapped_column(String(100))
    baseline_key: Mapped[str] = mapped_column(String(64))
    variant_key: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """Bookkeeping of one stage of work (quantize/generate/execute/report) for progress and timing."""

    __tablename__ = "jobs"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    variant_key: Mapped[str | None] = mapped_column(String(64))
    benchmark: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|running|done|failed|cancelled
    task_id: Mapped[str | None] = mapped_column(String(64))  # Celery task id while dispatched (distributed mode)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class JobEnvironment(Base):
    """Software versions and hardware of the worker that did a job, as its stage function reported them."""

    __tablename__ = "job_environments"
    job_key: Mapped[str] = mapped_column(ForeignKey("jobs.key", ondelete="CASCADE"), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    environment: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Verification(Base):
    """A check of the verdicts themselves (issue 24): a benchmark's reference self-check, or the re-run of a sample
    of one variant's failures (flakes). A table of its own, so older stores gain it without a migration; the
    ``result`` is the check's JSON (``codequant_executor.self_check``, ``codequant_executor.flakes``)."""

    __tablename__ = "verifications"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), doc="self-check | flakes")
    benchmark: Mapped[str] = mapped_column(String(100))
    variant_key: Mapped[str | None] = mapped_column(String(64), doc="the variant whose failures ran again (flakes)")
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
