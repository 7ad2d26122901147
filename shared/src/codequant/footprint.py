"""Memory footprint arithmetic shared by every quantization method (no torch).

A footprint is a plain dict (it is stored as JSON with each variant): total stored bytes, GB (10^9 bytes, the
reference study's Size column), parameter counts, nominal and stored bits per quantized weight, and a breakdown
into codes, codebooks, scales and unquantized tensors. Tensors are described by their safetensors dtype and shape,
so the same arithmetic measures a saved folder and predicts one from a config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Tensor name -> (safetensors dtype such as "F16" or "I8", shape).
TensorShapes = dict[str, tuple[str, list[int]]]

_INTEGER = ("I8", "U8", "I16", "I32")
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
#: Study dtypes (and the footprint command's short names) -> safetensors dtype of unquantized tensors.
SAFETENSORS_DTYPE = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "fp32": "F32",
    "fp16": "F16",
    "bf16": "BF16",
}


def numel(shape: list[int]) -> int:
    """Number of elements of a tensor of ``shape``."""
    count = 1
    for dim in shape:
        count *= dim
    return count


def nbytes(dtype: str, shape: list[int]) -> int:
    """Stored bytes of a tensor."""
    return DTYPE_BYTES[dtype] * numel(shape)


def is_block_linear_weight(name: str, shape: list[int]) -> bool:
    """A linear weight inside a decoder block: what quantization methods replace (embeddings and lm_head stay)."""
    return len(shape) == 2 and name.endswith(".weight") and ".layers." in name and "embed" not in name


def result(
    codes: int,
    codebooks: int,
    scales: int,
    unquantized: int,
    quantized_params: int,
    params: int,
    nominal_bits: float | None,
    note: str | None = None,
) -> dict[str, Any]:
    """A footprint from its parts (bytes) and parameter counts."""
    total = codes + codebooks + scales + unquantized
    stored = (codes + codebooks + scales) * 8 / quantized_params if quantized_params else None
    out = {
        "total_bytes": total,
        "gb": total / 1e9,
        "num_parameters": params,
        "quantized_parameters": quantized_params,
        "nominal_bits_per_param": nominal_bits,
        "stored_bits_per_param": stored,
        "breakdown": {"codes": codes, "codebooks": codebooks, "scales": scales, "unquantized": unquantized},
    }
    if note:
        out["note"] = note
    return out


def packed_footprint(tensors: TensorShapes, quantized_params: int, note: str) -> dict[str, Any]:
    """A folder whose quantized layers store integer weights with scales: compressed-tensors (weight_packed int32 +
    weight_scale [+ zero point] + weight_shape) or bitsandbytes (int8 weight + SCB, or uint8 nf4 pairs +
    absmax/quant_map/state). A layer is quantized when its weight is stored as integers; everything else of that
    layer counts as scales. ``quantized_params``: how many weights were quantized (the folder's record says)."""
    owners = {
        name.rpartition(".")[0]
        for name, (dtype, _) in tensors.items()
        if name.endswith((".weight_packed", ".weight")) and dtype in _INTEGER
    }
    codes = scales = unquantized_bytes = unquantized_params = 0
    for name, (dtype, shape) in tensors.items():
        size = nbytes(dtype, shape)
        owner = _owner(name, owners)
        if owner is None and dtype not in _INTEGER:
            unquantized_params += numel(shape)
        if owner is None or name.endswith(".bias"):
            unquantized_bytes += size
        elif name in (f"{owner}.weight_packed", f"{owner}.weight"):
            codes += size
        else:
            scales += size
    params = quantized_params + unquantized_params
    return result(codes, 0, scales, unquantized_bytes, quantized_params, params, None, note=note)


def _owner(name: str, owners: set[str]) -> str | None:
    """The quantized layer a tensor belongs to (``layer.weight_scale``, bitsandbytes' ``layer.weight.absmax``)."""
    return next((o for o in (name.rpartition(".")[0], name.split(".weight.")[0]) if o in owners), None)


def unquantized(tensors: TensorShapes) -> dict[str, Any]:
    """Footprint of a model stored as it is (every tensor in its own dtype)."""
    total = sum(nbytes(d, s) for d, s in tensors.values())
    return result(0, 0, 0, total, 0, sum(numel(s) for _, s in tensors.values()), None)


def integer_layers(
    tensors: TensorShapes, bits: int, layer_state: Callable[[int, int], int], note: str
) -> dict[str, Any]:
    """Prediction for formats that store each block linear weight as ``bits``-bit integers.

    ``layer_state(out, in)`` gives the bytes a layer stores besides its integers (scales, zero points, absmax,
    quantization maps, shape vectors); everything else keeps its dtype.
    """
    codes = scales = kept = quantized = params = 0
    for name, (dtype, shape) in tensors.items():
        count = numel(shape)
        params += count
        if is_block_linear_weight(name, shape):
            quantized += count
            codes += (count * bits + 7) // 8
            scales += layer_state(*shape)
        else:
            kept += nbytes(dtype, shape)
    nominal = bits + (scales * 8 / quantized if quantized else 0)
    return result(codes, 0, scales, kept, quantized, params, nominal, note=note)
