"""AQLM: additive quantization with M learned codebooks of 2^B codewords over groups of g weights.

Footprint: codes M*B/(g_in*g_out) bits per weight, stored as int8 when B <= 8 and int16 otherwise, plus
codebooks (M * 2^B * g * 16 bits per layer) and scales (16 bits per output group).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from codequant import footprint as fp
from codequant.errors import InputError
from codequant.study.methods.base import CalibrationSpec, Strict, VariantModel, calibration_shorthand
from codequant.study.methods.registry import register_variant
from codequant.study.presets import AQLM_PRESETS


class FinetuneSpec(Strict):
    """End-to-end knowledge-distillation fine-tuning after quantization (paper: 5 epochs, lr 1e-5)."""

    epochs: int = Field(5, ge=1)
    lr: float = Field(1e-5, gt=0)
    batch_size: int = Field(1, ge=1)
    early_stopping_patience: int = Field(1, ge=0)


@register_variant
class AqlmVariant(VariantModel):
    """AQLM: additive quantization with M learned codebooks of 2^B codewords over groups of g weights."""

    #: vLLM removed AQLM in Aug 2025 (and TGI never had it): codequant's own server serves these folders.
    vllm_servable: ClassVar[bool] = False
    quantize_packages: ClassVar[tuple[str, ...]] = ("aqlm",)
    serve_packages: ClassVar[tuple[str, ...]] = ("aqlm",)
    checkpoint_format: ClassVar[str | None] = "aqlm"

    method: Literal["aqlm"]
    preset: str | None = Field(None, description=f"one of {', '.join(AQLM_PRESETS)}")
    num_codebooks: int | None = Field(None, ge=1, le=16, description="M")
    nbits_per_codebook: int | None = Field(None, ge=1, le=16, description="B")
    in_group_size: int | None = Field(None, ge=1, description="g")
    out_group_size: int | None = Field(None, ge=1, description="output group size")
    calibration: Annotated[CalibrationSpec, Field(default_factory=CalibrationSpec)]
    finetune: FinetuneSpec | None = Field(None, description="end-to-end knowledge-distillation fine-tuning")
    beam_size: int = Field(8, ge=1, description="beam search width")
    max_epochs: int = Field(100, ge=1, description="code/codebook alternations per layer")
    relative_tolerance: float = Field(0.01, gt=0, description="stop a layer when its error improves less")
    seed: int = 0

    @field_validator("calibration", mode="before")
    @classmethod
    def _calibration_shorthand(cls, value: Any) -> Any:
        return calibration_shorthand(value)

    @field_validator("finetune", mode="before")
    @classmethod
    def _finetune_shorthand(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value

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

    @property
    def paper_bits(self) -> int:
        """The bit width the paper names this setting by: code bits per weight rounded up (1x15 -> 2, 2x15 -> 4)."""
        assert self.num_codebooks and self.nbits_per_codebook and self.in_group_size and self.out_group_size
        return -(-self.num_codebooks * self.nbits_per_codebook // (self.in_group_size * self.out_group_size))

    def bits_per_weight(self, dtype: str, footprint: dict[str, Any] | None = None) -> float | None:
        return self.nominal_bits

    def precision_label(self, dtype: str, footprint: dict[str, Any] | None = None) -> str:
        label = f"{self.paper_bits}-bit AQLM {self.num_codebooks}x{self.nbits_per_codebook}"
        if self.in_group_size != 8 or self.out_group_size != 1:
            label += f" g{self.in_group_size}x{self.out_group_size}"
        extras = [self.calibration.set] if self.calibration.set != "random" else []
        if self.finetuned:
            extras.append("fine-tuned")
        return label + (f" ({', '.join(extras)})" if extras else "")

    def predict_footprint(self, tensors: fp.TensorShapes) -> dict[str, Any]:
        m, b, ig, og = self.num_codebooks, self.nbits_per_codebook, self.in_group_size, self.out_group_size
        assert m and b and ig and og
        predicted: fp.TensorShapes = {}
        for name, (dtype, shape) in tensors.items():
            if fp.is_block_linear_weight(name, shape):
                out, inp = shape
                if inp % ig or out % og:
                    raise InputError(f"{name}: {out}x{inp} is not divisible into {og}x{ig} groups")
                owner = name.removesuffix(".weight")
                predicted[f"{owner}.codes"] = ("I8" if b <= 8 else "I16", [out // og, inp // ig, m])
                predicted[f"{owner}.codebooks"] = ("F16", [m, 2**b, og, ig])
                predicted[f"{owner}.scales"] = ("F16", [out // og, 1, 1, 1])
            else:
                predicted[name] = (dtype, shape)
        return measure_aqlm(predicted, m, b, ig * og)

    @classmethod
    def measure_folder(
        cls, tensors: fp.TensorShapes, quantization_config: dict[str, Any], record: dict[str, Any]
    ) -> dict[str, Any]:
        quant = quantization_config
        group = quant["in_group_size"] * quant["out_group_size"]
        return measure_aqlm(tensors, quant["num_codebooks"], quant["nbits_per_codebook"], group)


def measure_aqlm(tensors: fp.TensorShapes, num_codebooks: int, nbits_per_codebook: int, group: int) -> dict[str, Any]:
    """Footprint of AQLM tensors (``layer.codes``, ``layer.codebooks``, ``layer.scales``; everything else kept)."""
    codes = codebooks = scales = unquantized = quantized_params = params = 0
    layers = {name.removesuffix(".codes") for name in tensors if name.endswith(".codes")}
    for name, (dtype, shape) in tensors.items():
        owner, _, leaf = name.rpartition(".")
        size = fp.nbytes(dtype, shape)
        if owner in layers and leaf == "codes":
            codes += size
            _, _, og, ig = tensors[f"{owner}.codebooks"][1]
            count = shape[0] * og * shape[1] * ig
            quantized_params += count
            params += count
        elif owner in layers and leaf == "codebooks":
            codebooks += size
        elif owner in layers and leaf == "scales":
            scales += size
        else:
            unquantized += size
            params += fp.numel(shape)
    overhead = (codebooks + scales) * 8 / quantized_params if quantized_params else 0
    nominal = num_codebooks * nbits_per_codebook / group + overhead
    return fp.result(codes, codebooks, scales, unquantized, quantized_params, params, nominal)
