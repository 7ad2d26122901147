"""GPTQ and AWQ through llm-compressor, saved as compressed-tensors checkpoints."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from codequant import footprint as fp
from codequant.study.methods.base import CalibrationSpec, VariantModel, calibration_shorthand
from codequant.study.methods.registry import register_variant


@register_variant
class CompressorVariant(VariantModel):
    """GPTQ or AWQ through llm-compressor, saved as a compressed-tensors checkpoint.

    W4A16/W8A16: int weights in groups of ``group_size`` input columns, 16-bit activations.
    W8A8: int8 weights per output channel and int8 activations quantized per token at run time.
    """

    quantize_packages: ClassVar[tuple[str, ...]] = ("llmcompressor", "compressed-tensors")
    serve_packages: ClassVar[tuple[str, ...]] = ("compressed-tensors",)
    checkpoint_format: ClassVar[str | None] = "compressed-tensors"

    method: Literal["gptq", "awq"]
    scheme: Literal["W4A16", "W8A16", "W8A8"] = Field("W4A16", description="weight and activation bits")
    group_size: int = Field(128, ge=1, description="input columns per scale")
    symmetric: bool = Field(True, description="symmetric integers (no zero point)")
    dampening_frac: float = Field(0.01, gt=0, description="GPTQ: Hessian dampening, fraction of its mean diagonal")
    awq_grid: int = Field(20, ge=2, description="AWQ: scale ratios searched per group of layers")
    calibration: Annotated[CalibrationSpec, Field(default_factory=CalibrationSpec)]

    @field_validator("calibration", mode="before")
    @classmethod
    def _calibration_shorthand(cls, value: Any) -> Any:
        return calibration_shorthand(value)

    @property
    def weight_bits(self) -> int:
        return int(self.scheme[1])

    def bits_per_weight(self, dtype: str, footprint: dict[str, Any] | None = None) -> float | None:
        return float(self.weight_bits)

    def precision_label(self, dtype: str, footprint: dict[str, Any] | None = None) -> str:
        group = "" if self.scheme == "W8A8" else f" g{self.group_size}"  # W8A8 scales per channel
        return f"{self.method.upper()} {self.scheme}{group}"

    def predict_footprint(self, tensors: fp.TensorShapes) -> dict[str, Any]:
        group = None if self.scheme == "W8A8" else self.group_size
        return compressed_tensors_footprint(tensors, self.weight_bits, group, self.symmetric)


def compressed_tensors_footprint(
    tensors: fp.TensorShapes, bits: int, group_size: int | None, symmetric: bool
) -> dict[str, Any]:
    """A compressed-tensors checkpoint: every linear layer but lm_head as packed integers, with a scale in the
    model's dtype per group of input columns (per row when ``group_size`` is None, llm-compressor's int8
    format), zero points packed like the weights when asymmetric, and the weight's shape (2 x int64) when packed."""
    kept = next((d for n, (d, s) in tensors.items() if fp.is_block_linear_weight(n, s)), "F16")

    def state(out: int, inp: int) -> int:
        groups = 1 if group_size is None else -(-inp // group_size)
        zero_points = 0 if symmetric else out * groups * bits // 8
        shape = 0 if group_size is None else 16
        return out * groups * fp.DTYPE_BYTES[kept] + zero_points + shape

    return fp.integer_layers(tensors, bits, state, note="compressed-tensors checkpoint")
