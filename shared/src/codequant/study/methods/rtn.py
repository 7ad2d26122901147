"""Round-to-nearest integer weights with per-group scales (no calibration): the floor every method must beat."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from codequant import footprint as fp
from codequant.study.methods.base import VariantModel
from codequant.study.methods.registry import register_variant


@register_variant
class RtnVariant(VariantModel):
    """Round-to-nearest integer weights with per-group scales (no calibration): the floor to beat.

    ``backend: codequant`` (no extra dependency, 2-8 bits) stores de-quantized weights and counts the packed size;
    ``backend: llm-compressor`` (4 or 8 bits) writes a packed compressed-tensors checkpoint that vLLM serves.
    """

    quantize_packages: ClassVar[tuple[str, ...]] = ("llmcompressor", "compressed-tensors")  # its packed backend
    serve_packages: ClassVar[tuple[str, ...]] = ("compressed-tensors",)

    method: Literal["rtn"]
    bits: int = Field(ge=2, le=8, description="bits per weight (2-8)")
    group_size: int = Field(128, ge=1, description="input columns per scale")
    symmetric: bool = Field(False, description="symmetric integers (no zero point)")
    backend: Literal["codequant", "llm-compressor"] = Field("codequant", description="llm-compressor: packed 4/8 bits")

    @model_validator(mode="after")
    def _packable(self) -> RtnVariant:
        if self.backend == "llm-compressor" and self.bits not in (4, 8):
            raise ValueError("bits: llm-compressor packs 4 or 8 bits; use backend codequant for 2, 3, 5-7 bits")
        return self

    def bits_per_weight(self, dtype: str, footprint: dict[str, Any] | None = None) -> float | None:
        return float(self.bits)

    def precision_label(self, dtype: str, footprint: dict[str, Any] | None = None) -> str:
        return f"{self.bits}-bit RTN g{self.group_size}"

    def predict_footprint(self, tensors: fp.TensorShapes) -> dict[str, Any]:
        if self.backend == "llm-compressor":
            from codequant.study.methods.compressor import compressed_tensors_footprint

            return compressed_tensors_footprint(tensors, self.bits, self.group_size, self.symmetric)
        # One fp16 scale (and an fp16 zero point unless symmetric) per group of input columns of each row.
        per_group = 2 if self.symmetric else 4
        return fp.integer_layers(
            tensors,
            self.bits,
            lambda out, inp: out * -(-inp // self.group_size) * per_group,
            note="packed size: the folder stores de-quantized weights, the footprint counts packed integers",
        )
