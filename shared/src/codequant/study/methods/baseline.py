"""The unquantized model, served in its own dtype: the reference every variant is compared with."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from codequant import footprint as fp
from codequant.study.methods.base import DTYPE_BITS, VariantModel
from codequant.study.methods.registry import register_variant


@register_variant
class BaselineVariant(VariantModel):
    """The unquantized model in the model's dtype."""

    quantized: ClassVar[bool] = False
    method: Literal["baseline"]

    def bits_per_weight(self, dtype: str, footprint: dict[str, Any] | None = None) -> float | None:
        if dtype in DTYPE_BITS:
            return float(DTYPE_BITS[dtype])
        if footprint and footprint.get("num_parameters"):  # dtype "auto": what the weights are stored in
            return round(footprint["total_bytes"] * 8 / footprint["num_parameters"])
        return None

    def precision_label(self, dtype: str, footprint: dict[str, Any] | None = None) -> str:
        if dtype == "bfloat16":
            return "bf16"
        bits = self.bits_per_weight(dtype, footprint)
        return {16: "fp16", 32: "fp32"}.get(int(bits), f"{bits:g}-bit") if bits else "full"

    def predict_footprint(self, tensors: fp.TensorShapes) -> dict[str, Any]:
        return fp.unquantized(tensors)
