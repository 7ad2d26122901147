"""The messages of the four stages: what each stage function takes and returns, on a queue or in process.

Celery carries them as JSON (``model_dump(mode="json")``); the embedded runner passes the same objects
directly, so both modes call the stage functions with the same inputs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codequant.limits import Limits
from codequant.study.methods import EndpointSpec
from codequant.study.spec import BenchmarkSpec, SamplingParams

#: Software versions and hardware of the worker that did the work (``codequant.environment.describe``).
Environment = dict[str, str]


class Payload(BaseModel):
    """Base of every message: unknown fields are errors, so a worker and an orchestrator that disagree fail loudly."""

    model_config = ConfigDict(extra="forbid")


class PrepareRequest(Payload):
    """quantize queue: resolve a model source and produce (or find) a variant's weights."""

    model: dict[str, Any] = Field(description="model source: {path} | {hub_id, revision} | {builtin: {...}}")
    model_dtype: str = "auto"
    variant: dict[str, Any] = Field(description="the variant's method config (VariantModel.method_config())")
    out_dir: str = Field(description="artifact folder of a quantized variant")
    device: str = "cpu"


class PrepareResult(Payload):
    artifact_path: str = Field(description="the folder to serve")
    footprint: dict[str, Any] | None = None
    environment: Environment = Field(default_factory=dict)


class GenerateRequest(Payload):
    """generate / generate-remote queues: sample every missing completion of a variant on some benchmarks."""

    study_id: str
    variant_key: str
    benchmarks: list[BenchmarkSpec] = Field(min_length=1)
    sampling: dict[str, SamplingParams] = Field(description="benchmark name -> its sampling")
    endpoint: EndpointSpec | None = Field(None, description="an external server; None: serve `model` here")
    model: str | None = Field(None, description="folder to serve when there is no endpoint")
    model_dtype: str = "auto"
    server: Literal["auto", "codequant", "vllm"] = Field(
        "codequant", description="which server samples `model` (auto: vLLM where the worker has it and a GPU)"
    )
    store_url: str


class GenerateResult(Payload):
    generated: dict[str, int] = Field(default_factory=dict, description="benchmark -> completions sampled now")
    stored_before: dict[str, int] = Field(default_factory=dict, description="benchmark -> completions found stored")
    environment: Environment = Field(default_factory=dict)


class ExecutionItem(Payload):
    """One stored completion to run against its problem's tests (MultiPL-E field names)."""

    name: str
    language: str
    prompt: str
    completion: str
    tests: str
    completion_key: str
    timeout_s: float | None = Field(None, description="the problem's calibrated time limit (None: the request's)")


class ExecuteRequest(Payload):
    """execute queue: a chunk of programs. The executor reaches only Redis, so results travel back by value."""

    items: list[ExecutionItem]
    limits: dict[str, Any] = Field(default_factory=lambda: Limits().as_key())


class ExecutionOutcome(Payload):
    """What running one completion gave (identical programs share one execution key)."""

    completion_key: str
    execution_key: str
    language: str
    status: str
    passed: bool
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0


class ExecuteResult(Payload):
    outcomes: list[ExecutionOutcome]
    environment: Environment = Field(default_factory=dict)


class SelfCheckRequest(Payload):
    """execute queue: run every reference solution of one benchmark twice (the reference self-check), in the
    executor, container and limits the completions get; the executor measures their runtimes for the limits."""

    benchmark: str
    problems: list[dict[str, Any]] = Field(description="the benchmark's problems (``Problem`` fields)")
    limits: dict[str, Any]
    rerun: bool = Field(False, description="run a flipped reference until two runs in a row agree")
    max_runs: int = Field(5, ge=2)
    calibration: dict[str, float] | None = Field(None, description="{factor, floor_s}: derive per-problem limits")


class FlakeRequest(Payload):
    """execute queue: run a seeded sample of one variant's failed samples on one benchmark again."""

    benchmark: str
    language: str
    variant: str = Field(description="the variant's label")
    failures: int = Field(ge=0, description="failed samples the sample was drawn from")
    sampled: list[dict[str, Any]] = Field(
        description="name, sample, status (the stored verdict), language, prompt, completion, tests[, timeout_s]"
    )
    limits: dict[str, Any]
    max_runs: int = Field(2, ge=2)
    policy: Literal["exclude", "rerun"]


class AgreementRequest(Payload):
    """generate queue: decode a model folder greedily with transformers and with a server serving it (the serving
    agreement check's token comparison; the orchestrator has both sides' completions executed)."""

    model: str
    benchmark: str
    problems: list[dict[str, Any]] = Field(description="the problems checked (``Problem`` fields)")
    max_new_tokens: int = Field(ge=1)
    server: str = "codequant"
    dtype: str = "auto"
    device: str = "cpu"


class ReportRequest(Payload):
    """report queue: render a study's report from the store."""

    study_id: str
    store_url: str
    out_dir: str
    formats: list[str] = Field(default_factory=lambda: ["md", "html", "csv", "tex", "json"])


class ReportResult(Payload):
    files: dict[str, str] = Field(description="format or file key -> path written")
    environment: Environment = Field(default_factory=dict)
