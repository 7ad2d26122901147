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
