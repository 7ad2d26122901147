"""One configuration class per quantization method, resolved from the study's ``method:`` string.

Like transformers' quantizer registry: adding a method means one new class here and
its implementation in the quantizer service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from codequant.study.presets import AQLM_PRESETS

CALIBRATION_RECIPES = ("random", "mixed", "code")


class Strict(BaseModel):
    """Base for every spec model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CalibrationSpec(Strict):
    """Calibration data: one of the paper's recipes or a local file/folder, and its size."""

    set: str = Field("random", description="random | mixed | code | a local path (JSONL or folder)")
    nsamples: int = Field(1024, ge=1, description="number of sequences")
    seqlen: int = Field(4096, ge=8, description="tokens per sequence")
    seed: int = 0

    @field_validator("set")
    @classmethod
    def _known_or_existing(cls, value: str) -> str:
        if value in CALIBRATION_RECIPES:
            return value
        if not Path(value).exists():
            raise ValueError(f"must be one of {', '.join(CALIBRATION_RECIPES)} or an existing path, got {value!r}")
        return value


class FinetuneSpec(Strict):
    """End-to-end knowledge-distillation fine-tuning after quantization (paper: 5 epochs, lr 1e-5)."""

    epochs: int = Field(5, ge=1)
    lr: float = Field(1e-5, gt=0)
    batch_size: int = Field(1, ge=1)
    early_stopping_patience: int = Field(1, ge=0)


def _coerce_calibration(value: Any) -> Any:
    return {"set": value} if isinstance(value, str) else value


def _coerce_finetune(value: Any) -> Any:
    if value is True:
        return {}
    if value is False:
        return None
    return value


class EndpointSpec(Strict):
    """An external TGI / vLLM / OpenAI-compatible or hosted server that already serves this variant.

    Secrets stay in the environment: the spec names the variables that hold them."""

    url: str
    api: Literal["tgi", "openai", "openai-chat"] = "tgi"
    model: str | None = Field(None, description="model name for the OpenAI API")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="extra HTTP headers: header name -> environment variable holding its value"
    )
    max_concurrency: int | None = Field(None, ge=1, description="requests in flight to this endpoint, at most")

    def key_config(self) -> dict[str, Any]:
        """The fields that decide what the endpoint generates (credentials and limits do not)."""
        return self.model_dump(mode="json", include={"url", "api", "model"})


class _Variant(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    endpoint: EndpointSpec | None = Field(
        None, description="sample from this already-running server instead of serving the variant ourselves"
    )

    def method_config(self) -> dict[str, Any]:
        """The fields that determine the quantized weights (used in the variant key)."""
        return self.model_dump(mode="json", exclude={"name", "endpoint"})


class BaselineVariant(_Variant):
    """The unquantized model in the model's dtype."""

    method: Literal["baseline"]


class AqlmVariant(_Variant):
    """AQLM: additive quantization with M learned codebooks of 2^B codewords over groups of g weights."""

    method: Literal["aqlm"]
    preset: str | None = Field(None, description=f"one of {', '.join(AQLM_PRESETS)}")
    num_codebooks: int | None = Field(None, ge=1, le=16)
    nbits_per_codebook: int | None = Field(None, ge=1, le=16)
    in_group_size: int | None = Field(None, ge=1)
    out_group_size: int | None = Field(None, ge=1)
    calibration: Annotated[CalibrationSpec, Field(default_factory=CalibrationSpec)]
    finetune: FinetuneSpec | None = None
    beam_size: int = Field(8, ge=1)
    max_epochs: int = Field(100, ge=1, description="code/codebook alternations per layer")
    relative_tolerance: float = Field(0.01, gt=0)
    seed: int = 0

    @field_validator("calibration", mode="before")
    @classmethod
    def _calibration_shorthand(cls, value: Any) -> Any:
        return _coerce_calibration(value)

    @field_validator("finetune", mode="before")
    @classmethod
    def _finetune_shorthand(cls, value: Any) -> Any:
        return _coerce_finetune(value)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        preset = data["preset"]
        if preset not in AQLM_PRESETS:
            raise ValueError(f"preset: unknown AQLM preset {preset!r}; known: {', '.join(AQLM_PRESETS)}")
        clash = [k for k in AQLM_PRESETS[preset] if data.get(k) is not None]
        if clash:
            raise ValueError(f"preset {preset!r} already sets {', '.join(clash)}; give either the preset or the fields")
        return {**data, **AQLM_PRESETS[preset]}

    @model_validator(mode="after")
    def _complete(self) -> AqlmVariant:
        missing = [k for k in ("num_codebooks", "nbits_per_codebook", "in_group_size") if getattr(self, k) is None]
        if missing:
            raise ValueError(f"missing {', '.join(missing)} (or give a preset)")
        if self.out_group_size is None:
            object.__setattr__(self, "out_group_size", 1)
        return self

    @property
    def nominal_bits(self) -> float:
        """Code bits per weight, M*B/(g_in*g_out), without codebooks and scales."""
        assert self.num_codebooks and self.nbits_per_codebook and self.in_group_size and self.out_group_size
        return self.num_codebooks * self.nbits_per_codebook / (self.in_group_size * self.out_group_size)


class RtnVariant(_Variant):
    """Round-to-nearest integer weights with per-group scales (no calibration): the floor to beat.

    ``backend: codequant`` (no extra dependency, 2-8 bits) stores de-quantized weights and counts the packed size;
    ``backend: llm-compressor`` (4 or 8 bits) writes a packed compressed-tensors checkpoint that vLLM serves.
    """

    method: Literal["rtn"]
    bits: int = Field(ge=2, le=8)
    group_size: int = Field(128, ge=1)
    symmetric: bool = False
    backend: Literal["codequant", "llm-compressor"] = "codequant"

    @model_validator(mode="after")
    def _packable(self) -> RtnVariant:
        if self.backend == "llm-compressor" and self.bits not in (4, 8):
            raise ValueError("bits: llm-compressor packs 4 or 8 bits; use backend codequant for 2, 3, 5-7 bits")
        return self


class CompressorVariant(_Variant):
    """GPTQ or AWQ through llm-compressor, saved as a compressed-tensors checkpoint.

    W4A16/W8A16: int weights in groups of ``group_size`` input columns, 16-bit activations.
    W8A8: int8 weights per output channel and int8 activations quantized per token at run time.
    """

    method: Literal["gptq", "awq"]
    scheme: Literal["W4A16", "W8A16", "W8A8"] = "W4A16"
    group_size: int = Field(128, ge=1)
    symmetric: bool = True
    dampening_frac: float = Field(0.01, gt=0, description="GPTQ: Hessian dampening, fraction of its mean diagonal")
    awq_grid: int = Field(20, ge=2, description="AWQ: scale ratios searched per group of layers")
    calibration: Annotated[CalibrationSpec, Field(default_factory=CalibrationSpec)]

    @field_validator("calibration", mode="before")
    @classmethod
    def _calibration_shorthand(cls, value: Any) -> Any:
        return _coerce_calibration(value)


class BitsAndBytesVariant(_Variant):
    """bitsandbytes int8 (LLM.int8 with outlier columns in 16 bits) or nf4 (4-bit NormalFloat, blocks of 64)."""

    method: Literal["bnb-int8", "bnb-nf4"]
    double_quant: bool = Field(False, description="nf4: quantize the block scales too (~0.4 bits less per weight)")
    outlier_threshold: float = Field(6.0, ge=0, description="int8: activation magnitude that marks an outlier column")


VariantSpec = Annotated[
    BaselineVariant | AqlmVariant | RtnVariant | CompressorVariant | BitsAndBytesVariant,
    Field(discriminator="method"),
]

METHODS: tuple[str, ...] = ("baseline", "aqlm", "rtn", "gptq", "awq", "bnb-int8", "bnb-nf4")
#: Methods whose weights the quantizer writes into a model folder (the baseline is served as it is).
QUANTIZED_METHODS: frozenset[str] = frozenset(METHODS) - {"baseline"}
