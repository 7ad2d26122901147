"""What every variant model shares: its name, an optional external endpoint, and the questions each method answers.

A method is one subclass of ``VariantModel`` registered with ``register_variant`` (see ``registry``): it validates
its own fields, and knows its nominal bits per weight, its Precision label and its footprint predicted from a
model's tensor shapes. None of this imports torch.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from codequant.errors import InputError
from codequant.footprint import TensorShapes, packed_footprint
from codequant.protocols import api_names, get_api

CALIBRATION_RECIPES = ("random", "mixed", "code")
#: Bits per weight of the unquantized dtypes a model can be loaded in.
DTYPE_BITS = {"float32": 32, "float16": 16, "bfloat16": 16}


class Strict(BaseModel):
    """Base for every spec model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CalibrationSpec(Strict):
    """Calibration data: one of the paper's recipes or a local file/folder, and its size."""

    set: str = Field(
        "random",
        description="random | mixed | code | a local path (JSONL or folder)",
        json_schema_extra={"option": "calibration"},
    )
    nsamples: int = Field(1024, ge=1, description="number of sequences", json_schema_extra={"option": "nsamples"})
    seqlen: int = Field(4096, ge=8, description="tokens per sequence", json_schema_extra={"option": "seqlen"})
    seed: int = Field(0, description="seed of the calibration draw")

    @field_validator("set")
    @classmethod
    def _known_or_existing(cls, value: str) -> str:
        if value in CALIBRATION_RECIPES:
            return value
        if not Path(value).exists():
            raise ValueError(f"must be one of {', '.join(CALIBRATION_RECIPES)} or an existing path, got {value!r}")
        return value


def calibration_shorthand(value: Any) -> Any:
    """``calibration: code`` means ``calibration: {set: code}``."""
    return {"set": value} if isinstance(value, str) else value


#: How long a client waits for one attempt of a request, by default (a slow model on a CPU needs minutes).
DEFAULT_REQUEST_TIMEOUT_S = 600.0
#: OpenAI APIs: a problem's n is split into requests of at most this many samples, by default.
DEFAULT_SAMPLES_PER_REQUEST = 32


class EndpointSpec(Strict):
    """An external TGI / vLLM / OpenAI-compatible or hosted server that already serves this variant.

    Secrets stay in the environment: the spec names the variables that hold them."""

    url: str
    api: str = Field("tgi", description="the endpoint's protocol (codequant.protocols)")
    model: str | None = Field(None, description="model name for the OpenAI API")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="extra HTTP headers: header name -> environment variable holding its value"
    )
    max_concurrency: int | None = Field(None, ge=1, description="requests in flight to this endpoint, at most")
    request_timeout_s: float = Field(
        DEFAULT_REQUEST_TIMEOUT_S, gt=0, description="seconds to wait for an answer to one attempt of a request"
    )
    samples_per_request: int = Field(
        DEFAULT_SAMPLES_PER_REQUEST,
        ge=1,
        description="OpenAI APIs: a problem's n is split into requests of at most this many samples",
    )

    @field_validator("api")
    @classmethod
    def _known_api(cls, value: str) -> str:
        if value not in api_names():
            raise ValueError(f"must be one of {', '.join(api_names())}, got {value!r}")
        return value

    def key_config(self) -> dict[str, Any]:
        """The fields that decide what the endpoint generates (credentials and limits do not)."""
        return self.model_dump(mode="json", include={"url", "api", "model"})

    def key_variable(self) -> str | None:
        """The variable the API key is read from: ``api_key_env``, else the API's conventional one when it is set
        (OPENAI_API_KEY, HF_TOKEN), else None (no key is sent)."""
        if self.api_key_env:
            return self.api_key_env
        conventional = get_api(self.api).key_env
        return conventional if os.environ.get(conventional) else None

    def credentials(self) -> tuple[str | None, dict[str, str]]:
        """(API key, extra headers) read from the environment; InputError naming a variable that is not set."""
        missing = [name for name in [self.api_key_env, *self.headers_env.values()] if name and name not in os.environ]
        if missing:
            raise InputError(
                f"endpoint {self.url}: environment variable {', '.join(missing)} is not set "
                "(named by api_key_env / headers_env)"
            )
        variable = self.key_variable()
        key = os.environ[variable] if variable else None
        return key, {header: os.environ[name] for header, name in self.headers_env.items()}

    def auth_hint(self) -> str:
        """What to do when the endpoint refuses the request's credentials (HTTP 401/403)."""
        variable = self.key_variable()
        if variable:
            return (
                f"the API key in ${variable} was refused: set it to a valid key, or name the variable that holds one "
                "with --api-key-env (study: endpoint.api_key_env)"
            )
        return (
            f"no API key was sent: set ${get_api(self.api).key_env}, or name the variable that holds the key with "
            "--api-key-env (study: endpoint.api_key_env)"
        )


class VariantModel(Strict):
    """One variant of a model in a study. Subclasses narrow ``method`` to their ``Literal`` method name(s)."""

    #: False for a method whose weights are served as they are (the quantizer writes no folder).
    quantized: ClassVar[bool] = True
    #: Whether vLLM serves this method's folders (``serving.server: auto`` picks vLLM for them on GPU hosts).
    vllm_servable: ClassVar[bool] = True
    #: The libraries (distribution names) its folders are made with, beyond torch and transformers: their versions
    #: are recorded with each quantize job and in quantization.json.
    quantize_packages: ClassVar[tuple[str, ...]] = ()
    #: The libraries its folders are served with (recorded with the generate job of a self-served variant).
    serve_packages: ClassVar[tuple[str, ...]] = ()
    #: ``quantization_config.quant_method`` of its saved folders (None: none of its own); a folder in this format is
    #: measured by ``measure_folder``.
    checkpoint_format: ClassVar[str | None] = None

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    method: str
    endpoint: EndpointSpec | None = Field(
        None, description="sample from this already-running server instead of serving the variant ourselves"
    )

    def method_config(self) -> dict[str, Any]:
        """The fields that determine the quantized weights (used in the variant key)."""
        return self.model_dump(mode="json", exclude={"name", "endpoint"})

    @property
    def calibration_set(self) -> str | None:
        """The calibration set's name or path, for methods that calibrate."""
        calibration = getattr(self, "calibration", None)
        return calibration.set if isinstance(calibration, CalibrationSpec) else None

    @property
    def finetuned(self) -> bool:
        """Whether the quantized model is fine-tuned end to end afterwards."""
        return bool(getattr(self, "finetune", None))

    @abstractmethod
    def bits_per_weight(self, dtype: str, footprint: dict[str, Any] | None = None) -> float | None:
        """Nominal bits per weight of the quantized layers (``dtype``: the model's; ``footprint``: if measured)."""

    @abstractmethod
    def precision_label(self, dtype: str, footprint: dict[str, Any] | None = None) -> str:
        """The Precision column of the report, e.g. ``fp16``, ``2-bit AQLM 1x15``, ``4-bit RTN g128``."""

    @abstractmethod
    def predict_footprint(self, tensors: TensorShapes) -> dict[str, Any]:
        """The footprint of this variant of a model whose unquantized tensors are ``tensors``."""

    @classmethod
    def measure_folder(
        cls, tensors: TensorShapes, quantization_config: dict[str, Any], record: dict[str, Any]
    ) -> dict[str, Any]:
        """The footprint of a saved folder in ``checkpoint_format`` (``tensors``: its safetensors headers;
        ``record``: its quantization.json, if any); by default integer weights with their scales."""
        return packed_footprint(
            tensors, record.get("quantized_parameters") or 0, note=f"{cls.checkpoint_format} checkpoint"
        )
