"""Memory footprint of a model variant: measured from a saved folder, or predicted from a config alone.

Nominal AQLM bits per weight: codes M*B/(g_in*g_out) + codebooks (M * 2^B * g * 16 bits per layer)
+ scales (16 bits per output group), over the quantized layers. Stored: codes wider than 8 bits are
kept as int16 (int8 otherwise), so stored bits can exceed the nominal figure. Sizes are stored bytes
(GB = 10^9 bytes), the reference study's Size column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codequant.errors import InputError

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
METHOD_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


def _result(
    codes: int,
    codebooks: int,
    scales: int,
    unquantized: int,
    quantized_params: int,
    params: int,
    nominal_bits: float | None,
    note: str | None = None,
) -> dict[str, Any]:
    total = codes + codebooks + scales + unquantized
    stored = (codes + codebooks + scales) * 8 / quantized_params if quantized_params else None
    result = {
        "total_bytes": total,
        "gb": total / 1e9,
        "num_parameters": params,
        "quantized_parameters": quantized_params,
        "nominal_bits_per_param": nominal_bits,
        "stored_bits_per_param": stored,
        "breakdown": {"codes": codes, "codebooks": codebooks, "scales": scales, "unquantized": unquantized},
    }
    if note:
        result["note"] = note
    return result


def from_folder(folder: Path) -> dict[str, Any]:
    """Footprint of a saved model folder, from its safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise InputError(f"{folder}: no .safetensors files")
    config = json.loads((Path(folder) / "config.json").read_text())
    record_path = Path(folder) / "quantization.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    tensors: dict[str, tuple[str, list[int]]] = {}
    for file in files:
        with safe_open(str(file), framework="numpy") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                piece = handle.get_slice(name)
                tensors[name] = (piece.get_dtype(), piece.get_shape())
    quant = config.get("quantization_config") or {}
    if quant.get("quant_method") == "aqlm":
        return _measure_aqlm(tensors, quant)
    if quant.get("quant_method") in PACKED_FORMATS:
        return _measure_packed(tensors, quant["quant_method"], record)
    if record.get("method") == "rtn":
        return _predict_rtn(tensors, record["config"])
    total = sum(_nbytes(d, s) for d, s in tensors.values())
    params = sum(_numel(s) for _, s in tensors.values())
    return _result(0, 0, 0, total, 0, params, None)


def _numel(shape: list[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _nbytes(dtype: str, shape: list[int]) -> int:
    return DTYPE_BYTES[dtype] * _numel(shape)


def _measure_aqlm(tensors: dict[str, tuple[str, list[int]]], quant: dict[str, Any]) -> dict[str, Any]:
    codes = codebooks = scales = unquantized = quantized_params = params = 0
    layers = {name.removesuffix(".codes") for name in tensors if name.endswith(".codes")}
    for name, (dtype, shape) in tensors.items():
        owner, _, leaf = name.rpartition(".")
        size = _nbytes(dtype, shape)
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
            params += _numel(shape)
    m, b = quant["num_codebooks"], quant["nbits_per_codebook"]
    group = quant["in_group_size"] * quant["out_group_size"]
    nominal = m * b / group + ((codebooks + scales) * 8 / quantized_params if quantized_params else 0)
    return _result(codes, codebooks, scales, unquantized, quantized_params, params, nominal)


#: Folders whose quantized layers store integer weights plus per-group or per-row scales (and bnb state).
PACKED_FORMATS = ("compressed-tensors", "bitsandbytes")
_INTEGER = ("I8", "U8", "I16", "I32")


def _measure_packed(
    tensors: dict[str, tuple[str, list[int]]], quant_method: str, record: dict[str, Any]
) -> dict[str, Any]:
    """compressed-tensors (weight_packed int32 + weight_scale [+ zero point] + weight_shape) and bitsandbytes
    (int8 weight + SCB, or uint8 nf4 pairs + absmax/quant_map/state) folders: a layer is quantized when its
    weight is stored as integers; everything else of that layer counts as scales."""
    owners = {
        name.rpartition(".")[0]
        for name, (dtype, _) in tensors.items()
        if name.endswith((".weight_packed", ".weight")) and dtype in _INTEGER
    }
    codes = scales = unquantized = unquantized_params = 0
    for name, (dtype, shape) in tensors.items():
        size = _nbytes(dtype, shape)
        owner = _owner(name, owners)
        if owner is None and dtype not in _INTEGER:
            unquantized_params += _numel(shape)
        if owner is None or name.endswith(".bias"):
            unquantized += size
        elif name in (f"{owner}.weight_packed", f"{owner}.weight"):
            codes += size
        else:
            scales += size
    quantized_params = record.get("quantized_parameters") or 0
    params = quantized_params + unquantized_params
    return _result(codes, 0, scales, unquantized, quantized_params, params, None, note=f"{quant_method} checkpoint")


def _owner(name: str, owners: set[str]) -> str | None:
    """The quantized layer a tensor belongs to (``layer.weight_scale``, bitsandbytes' ``layer.weight.absmax``)."""
    return next((o for o in (name.rpartition(".")[0], name.split(".weight.")[0]) if o in owners), None)


def _predict_rtn(tensors: dict[str, tuple[str, list[int]]], variant: dict[str, Any]) -> dict[str, Any]:
    bits, group, symmetric = variant["bits"], variant["group_size"], variant["symmetric"]
    codes = scales = unquantized = quantized_params = params = 0
    for name, (dtype, shape) in tensors.items():
        count = _numel(shape)
        params += count
        if _is_block_linear_weight(name, shape):
            quantized_params += count
            codes += (count * bits + 7) // 8
            groups = shape[0] * -(-shape[1] // group)
            scales += groups * (2 if symmetric else 4)  # fp16 scale (+ fp16 zero point)
        else:
            unquantized += _nbytes(dtype, shape)
    nominal = bits + (scales * 8 / quantized_params if quantized_params else 0)
    return _result(
        codes,
        0,
        scales,
        unquantized,
        quantized_params,
        params,
        nominal,
        note="packed size: the folder stores de-quantized weights, the footprint counts packed integers",
    )


def _is_block_linear_weight(name: str, shape: list[int]) -> bool:
    return len(shape) == 2 and name.endswith(".weight") and ".layers." in name and "embed" not in name


def from_config(
    config: Path | dict[str, Any], method: str = "fp16", *, dtype: str = "fp16", **params: Any
) -> dict[str, Any]:
    """Predict a variant's footprint from a model config on the meta device (no weights, no download).

    ``dtype`` (fp16, bf16, fp32) is how unquantized tensors are stored; ``method`` fp16/bf16/fp32 is the baseline.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if isinstance(config, dict):
        data = config
    else:
        try:
            data = json.loads(Path(config).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{config}: cannot read the model config ({exc})") from None
    data = {k: v for k, v in data.items() if k != "quantization_config"}
    model_type = data.get("model_type")
    if not model_type:
        raise InputError(f"{config}: field 'model_type' is missing")
    hf_config = AutoConfig.for_model(**data)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    shapes: dict[str, tuple[str, list[int]]] = {}
    dtype_name = {"fp32": "F32", "bf16": "BF16"}.get(method if method in METHOD_BYTES else dtype, "F16")
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and getattr(hf_config, "tie_word_embeddings", False):
            continue
        shapes[name] = (dtype_name, list(tensor.shape))
    if method in METHOD_BYTES:
        total = sum(_nbytes(d, s) for d, s in shapes.values())
        return _result(0, 0, 0, total, 0, sum(_numel(s) for _, s in shapes.values()), None)
    if method == "rtn":
        return _predict_rtn(
            shapes,
            {
                "bits": params["bits"],
                "group_size": params.get("group_size", 128),
                "symmetric": params.get("symmetric", False),
            },
        )
    if method == "aqlm":
        return _predict_aqlm(shapes, params)
    raise InputError(f"footprint: unknown method {method!r} (fp32, fp16, bf16, aqlm, rtn)")


def _predict_aqlm(shapes: dict[str, tuple[str, list[int]]], p: dict[str, Any]) -> dict[str, Any]:
    m, b, ig, og = p["num_codebooks"], p["nbits_per_codebook"], p["in_group_size"], p.get("out_group_size", 1)
    code_bytes = 1 if b <= 8 else 2
    predicted: dict[str, tuple[str, list[int]]] = {}
    for name, (dtype, shape) in shapes.items():
        if _is_block_linear_weight(name, shape):
            out, inp = shape
            if inp % ig or out % og:
                raise InputError(f"{name}: {out}x{inp} is not divisible into {og}x{ig} groups")
            owner = name.removesuffix(".weight")
            predicted[f"{owner}.codes"] = ("I8" if code_bytes == 1 else "I16", [out // og, inp // ig, m])
            predicted[f"{owner}.codebooks"] = ("F16", [m, 2**b, og, ig])
            predicted[f"{owner}.scales"] = ("F16", [out // og, 1, 1, 1])
        else:
            predicted[name] = (dtype, shape)
    return _measure_aqlm(
        predicted, {"num_codebooks": m, "nbits_per_codebook": b, "in_group_size": ig, "out_group_size": og}
    )
