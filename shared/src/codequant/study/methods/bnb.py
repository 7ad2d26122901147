"""bitsandbytes int8 (LLM.int8 with outlier columns in 16 bits) and nf4 (4-bit NormalFloat in blocks of 64)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from codequant import footprint as fp
from codequant.study.methods.base import VariantModel
from codequant.study.methods.registry import register_variant


@register_variant
class BitsAndBytesVariant(VariantModel):
    """bitsandbytes int8 (LLM.int8 with outlier columns in 16 bits) or nf4 (4-bit NormalFloat, blocks of 64)."""

    quantize_packages: ClassVar[tuple[str, ...]] = ("bitsandbytes",)
    serve_packages: ClassVar[tuple[str, ...]] = ("bitsandbytes",)
    checkpoint_format: ClassVar[str | None] = "bitsandbytes"

    method: Literal["bnb-int8", "bnb-nf4"]
    double_quant: bool = Field(False, description="nf4: quantize the block scales too (~0.4 bits less per weight)")
    outlier_threshold: float = Field(6.0, ge=0, description="int8: activation magnitude that marks an outlier column")

    def bits_per_weight(self, dtype: str, footprint: dict[str, Any] | None = None) -> float | None:
        return 8.0 if self.method == "bnb-int8" else 4.0

    def precision_label(self, dtype: str, footprint: dict[str, Any] | None = None) -> str:
        return "int8 (bitsandbytes)" if self.method == "bnb-int8" else "nf4 (bitsandbytes)"

    def predict_footprint(self, tensors: fp.TensorShapes) -> dict[str, Any]:
        note = "bitsandbytes checkpoint"
        if self.method == "bnb-int8":
            # int8 rows, one float32 absmax (SCB) per row and a one-byte format tag.
            return fp.integer_layers(tensors, 8, lambda out, _inp: out * 4 + 1, note=note)
        double = self.double_quant

        def state(out: int, inp: int) -> int:
            blocks = -(-out * inp // 64)
            # absmax per block of 64 (float32, or uint8 with a float32 per 256 of them and a 256-entry map when
            # double-quantized), the 16-entry NormalFloat map, and a JSON description of ~80 (~170) bytes.
            absmax = blocks + 4 * -(-blocks // 256) + 256 * 4 + 169 if double else blocks * 4 + 79
            return absmax + 16 * 4

        return fp.integer_layers(tensors, 4, state, note=note)
