"""Pydantic models of a study YAML file. Unknown keys are errors everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from codequant.benchmarks import BENCHMARKS, BenchmarkSet, load_benchmark
from codequant.instruct import PromptMode, key_config
from codequant.keys import variant_key
from codequant.languages import get_language
from codequant.limits import Limits
from codequant.protocols import chat_api_names, get_api
from codequant.study.methods import Strict, VariantModel, VariantSpec

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
#: Part of a builtin model's identity in variant keys. 2: the tiny model's full build is shipped and every build is
#: trained under the pinned numerics, so variants keyed before were made from other weights.
BUILTIN_WEIGHTS = 2


class BuiltinModel(Strict):
    """A model the project builds itself, offline (the tiny code model fixture)."""

    kind: Literal["tiny-code"] = "tiny-code"
    seed: int = 0
    profile: Literal["full", "test"] = Field("full", description="test: the smaller, faster build used in CI")


class ModelSpec(Strict):
    """One model and the variants of it to compare. Give exactly one of hub_id, path, builtin."""

    name: str = Field(min_length=1, pattern=NAME_PATTERN)
    hub_id: str | None = Field(None, description="Hugging Face hub id, e.g. codellama/CodeLlama-7b-hf")
    path: str | None = Field(None, description="local model folder")
    builtin: BuiltinModel | None = None
    revision: str = "main"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    params: str | None = Field(None, description="size shown in tables, e.g. 7B (computed when omitted)")
    variants: list[VariantSpec] = Field(min_length=1)

    @field_validator("builtin", mode="before")
    @classmethod
    def _builtin_shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _path_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_dir():
            raise ValueError(f"model folder {value!r} does not exist")
        return value

    @model_validator(mode="after")
    def _one_source_one_baseline(self) -> ModelSpec:
        sources = [k for k in ("hub_id", "path", "builtin") if getattr(self, k) is not None]
        if len(sources) != 1:
            raise ValueError(f"give exactly one of hub_id, path, builtin (got {', '.join(sources) or 'none'})")
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate variant names: {', '.join(duplicates)}")
        baselines = [v.name for v in self.variants if v.method == "baseline"]
        if len(baselines) != 1:
            raise ValueError(
                f"needs exactly one variant with method: baseline (comparisons are paired against it), "
                f"got {len(baselines)}"
            )
        return self

    def source(self) -> dict[str, Any]:
        """What identifies the model's weights (used in variant keys)."""
        if self.builtin is not None:
            return {"builtin": self.builtin.model_dump(mode="json"), "weights": BUILTIN_WEIGHTS}
        if self.path is not None:
            return {"path": str(Path(self.path).resolve())}
        return {"hub_id": self.hub_id, "revision": self.revision}

    def variant_key(self, variant_name: str) -> str:
        """The deterministic key of one of this model's variants."""
        variant = next(v for v in self.variants if v.name == variant_name)
        config = variant.method_config()
        if variant.endpoint is not None:  # sampled from another server: its completions are its own
            config["endpoint"] = variant.endpoint.key_config()
        return variant_key({**self.source(), "dtype": self.dtype}, config)

    @property
    def baseline(self) -> VariantModel:
        return next(v for v in self.variants if v.method == "baseline")


class BenchmarkSpec(Strict):
    """A benchmark and which of its problems to use: a built-in one by ``name``, or a user's JSONL file of
    MultiPL-E records by ``path`` (named after the file unless ``name`` is given)."""

    path: str | None = Field(None, description="a JSONL file of MultiPL-E records (a user-supplied benchmark)")
    name: str = Field(pattern=NAME_PATTERN)
    problems: list[str] | None = Field(None, description="explicit problem names (default: all)")
    limit: int | None = Field(None, ge=1, description="keep only the first N problems")
    exclude_humaneval_overlap: bool = Field(
        False, description="mceval-python only: drop the 8 problems that duplicate HumanEval (the paper's filter)"
    )
    max_new_tokens: int | None = Field(None, ge=1, description="overrides sampling.max_new_tokens")
    prompt_mode: PromptMode = Field(
        "completion",
        description="completion: the model continues the prompt; instruct: a chat model answers an instruction "
        "through its own chat template, and the code is extracted from its answer",
    )
    response_prefix: bool = Field(
        True,
        description="instruct only: the answer starts with the prompt in an open code block, continued by the model "
        "(false for chat endpoints that cannot continue an assistant message)",
    )

    @model_validator(mode="before")
    @classmethod
    def _name_from_path(cls, value: Any) -> Any:
        if isinstance(value, dict) and "name" not in value and isinstance(value.get("path"), str):
            return {**value, "name": Path(value["path"]).stem}
        return value

    @field_validator("path")
    @classmethod
    def _file_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"benchmark file {value!r} does not exist")
        return value

    @field_validator("name")
    @classmethod
    def _known_or_file(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("path") is None and "path" in info.data and value not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {value!r}; known: {', '.join(BENCHMARKS)} (or give a path)")
        if info.data.get("path") is not None and value in BENCHMARKS:
            raise ValueError(f"{value!r} is a built-in benchmark; give the file's benchmark another name")
        return value

    @model_validator(mode="after")
    def _overlap_only_mceval(self) -> BenchmarkSpec:
        if self.exclude_humaneval_overlap and self.name != "mceval-python":
            raise ValueError("exclude_humaneval_overlap applies to mceval-python only")
        if not self.response_prefix and self.prompt_mode != "instruct":
            raise ValueError("response_prefix applies to prompt_mode: instruct only")
        if self.prompt_mode == "instruct" and self.name in BENCHMARKS:
            language = get_language(BENCHMARKS[self.name].language)
            if language.extraction is None:
                raise ValueError(f"prompt_mode instruct needs code extraction rules, which {language.label} has not")
        return self

    def load(self, data_dir: Path | None = None) -> BenchmarkSet:
        """The benchmark's problems as this spec selects them (the one place a spec becomes problems)."""
        return load_benchmark(
            self.name,
            path=self.path,
            data_dir=data_dir,
            exclude_humaneval_overlap=self.exclude_humaneval_overlap,
            problems=self.problems,
            limit=self.limit,
        )


class SamplingParams(Strict):
    """The sampling of one benchmark: n samples per problem and what determines each completion."""

    n: int = Field(ge=1)
    temperature: float = Field(ge=0)
    top_p: float = Field(gt=0, le=1)
    max_new_tokens: int = Field(ge=1)
    seed: int = 0
    prompt_mode: PromptMode = "completion"
    response_prefix: bool = True

    def as_key(self) -> dict[str, Any]:
        """Sampling parameters and prompt format that determine a completion (part of its key).

        Completion mode adds nothing, so its keys are those of before prompt modes; instruct mode adds its prompt
        format, so completion- and instruct-mode samples never share a key."""
        key = self.model_dump(exclude={"n", "prompt_mode", "response_prefix"})
        prompt = key_config(self.prompt_mode, self.response_prefix)
        return key if prompt is None else {**key, "prompt": prompt}


class SamplingSpec(Strict):
    """How completions are sampled (paper: n=20, temperature 0.2, top_p 0.95)."""

    n: int = Field(20, ge=1)
    temperature: float = Field(0.2, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(1024, ge=1)
    seed: int = 0

    def params(
        self, max_new_tokens: int, prompt_mode: PromptMode = "completion", response_prefix: bool = True
    ) -> SamplingParams:
        """The sampling of a benchmark whose completions may take ``max_new_tokens``, prompted in ``prompt_mode``."""
        chosen = {"max_new_tokens": max_new_tokens, "prompt_mode": prompt_mode, "response_prefix": response_prefix}
        return SamplingParams(**{**self.model_dump(), **chosen})

    def as_key(self, max_new_tokens: int) -> dict[str, Any]:
        """Sampling parameters that determine a completion (part of its key)."""
        return self.params(max_new_tokens).as_key()


class CalibrationSpec(Strict):
    """Per-problem time limits: max(floor_s, factor x the reference solution's runtime on this executor)."""

    factor: float = Field(4.0, ge=1)
    floor_s: float = Field(3.0, gt=0, le=86400, description="covers start-up and, for Java, compilation")


class FlakeSpec(Strict):
    """Re-running a sample of each variant's failed samples to measure verdicts that flip."""

    sample: float = Field(0.25, ge=0, le=1, description="fraction of each variant's failed samples run again")
    policy: Literal["exclude", "rerun"] = Field(
        "exclude",
        description="exclude: a problem whose verdict flipped leaves the comparisons; rerun: its flipped samples run "
        "until two runs in a row agree (at most max_runs), and only problems that never settle are excluded",
    )
    max_runs: int = Field(5, ge=2, le=20)
    seed: int = 0


class ExecutionSpec(Strict):
    """Limits for running untrusted completions, and the checks of the verdicts (docs/executor.md)."""

    timeout_s: float = Field(15.0, gt=0)
    memory_mb: int = Field(1024, ge=64)
    workers: int | None = Field(None, ge=1, description="parallel executions (default: CPU count)")
    max_output_bytes: int = Field(64_000, ge=1024, description="bytes kept per output stream")
    self_check: bool = Field(True, description="run every reference solution before the first execution")
    calibration: CalibrationSpec | None = Field(None, description="per-problem time limits (needs self_check)")
    flakes: FlakeSpec = Field(default_factory=FlakeSpec)

    @model_validator(mode="after")
    def _calibration_needs_self_check(self) -> ExecutionSpec:
        if self.calibration is not None and not self.self_check:
            raise ValueError("calibration measures the reference solutions: it needs self_check: true")
        return self

    def limits(self) -> Limits:
        """The executor's limits (part of every execution key)."""
        return Limits(timeout_s=self.timeout_s, memory_mb=self.memory_mb, max_output_bytes=self.max_output_bytes)


class AgreementSpec(Strict):
    """The serving agreement check: greedy completions of the served variant against transformers' ``generate``."""

    problems: int = Field(5, ge=1, description="the first N problems of each completion-mode benchmark")
    max_new_tokens: int = Field(128, ge=1)
    min_token_agreement: float = Field(
        1.0, ge=0, le=1, description="the variant fails below this share of the reference's tokens reproduced"
    )


class ServingSpec(Strict):
    """Which server samples the variants that codequant serves itself (variants with an endpoint are unaffected)."""

    server: Literal["auto", "codequant", "vllm"] = Field(
        "auto",
        description="auto: vLLM for the variants it can serve when the worker has vLLM and a GPU, else codequant's "
        "own server; codequant: always codequant's server; vllm: vLLM for every variant it can serve",
    )
    agreement: AgreementSpec | None = Field(
        None, description="check each served variant's greedy completions against transformers' own generate"
    )


class StatisticsSpec(Strict):
    """Significance testing options."""

    alpha: float = Field(0.05, gt=0, lt=1)
    correction: Literal["benjamini-hochberg", "bonferroni", "none"] = "benjamini-hochberg"
    family: Literal["table", "benchmark", "study"] = Field(
        "table", description="which comparisons share one multiple-testing correction"
    )
    bootstrap_samples: int = Field(10000, ge=100)
    seed: int = 0
    margin_pp: float = Field(
        2.0, gt=0, lt=100, description="non-inferiority margin: the largest acceptable pass@1 drop, percentage points"
    )


class Study(Strict):
    """A whole study: models and variants x benchmarks, sampled, executed and compared."""

    name: str = Field(min_length=1, pattern=NAME_PATTERN)
    description: str = ""
    output_dir: str | None = Field(None, description="default: runs/<name>")
    store_url: str | None = Field(None, description="SQLAlchemy URL (default: SQLite in output_dir)")
    models: list[ModelSpec] = Field(min_length=1)
    benchmarks: list[BenchmarkSpec] = Field(min_length=1)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    statistics: StatisticsSpec = Field(default_factory=StatisticsSpec)

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _benchmark_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Study:
        for label, names in (
            ("model", [m.name for m in self.models]),
            ("benchmark", [b.name for b in self.benchmarks]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"duplicate {label} names: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _instruct_needs_chat(self) -> Study:
        instruct = [b.name for b in self.benchmarks if b.prompt_mode == "instruct"]
        for model in self.models:
            for variant in model.variants:
                if instruct and variant.endpoint is not None and not get_api(variant.endpoint.api).chat:
                    chat = " or ".join(chat_api_names())
                    raise ValueError(
                        f"variant {model.name}/{variant.name}: prompt_mode instruct ({', '.join(instruct)}) needs "
                        f"the chat completions API; give its endpoint api: {chat}"
                    )
        return self

    @property
    def out_dir(self) -> Path:
        return Path(self.output_dir or f"runs/{self.name}")

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{(self.out_dir / 'store.db').resolve()}"

    def benchmark(self, name: str) -> BenchmarkSpec:
        return next(b for b in self.benchmarks if b.name == name)

    def max_new_tokens(self, benchmark: str) -> int:
        return self.benchmark(benchmark).max_new_tokens or self.sampling.max_new_tokens

    def sampling_params(self, benchmark: str) -> SamplingParams:
        """How the completions of ``benchmark`` are sampled (and prompted)."""
        spec = self.benchmark(benchmark)
        return self.sampling.params(self.max_new_tokens(benchmark), spec.prompt_mode, spec.response_prefix)
