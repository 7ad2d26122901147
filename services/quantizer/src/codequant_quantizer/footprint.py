"""Memory footprint of a model variant: measured from a saved folder, or the tensor shapes a config implies.

The arithmetic lives with the methods (``codequant.study.methods``: each variant predicts its footprint from
tensor shapes) and in ``codequant.footprint``; this module reads safetensors headers and instantiates configs
on the meta device, which needs the quantizer's libraries. Sizes are stored bytes (GB = 10^9 bytes), the
reference study's Size column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codequant import footprint as fp
from codequant.errors import InputError
from codequant.study.methods import parse_variant
from codequant.study.methods.aqlm import measure_aqlm

#: Folders whose quantized layers store integer weights plus per-group or per-row scales (and bnb state).
PACKED_FORMATS = ("compressed-tensors", "bitsandbytes")
_INTEGER = ("I8", "U8", "I16", "I32")


def from_folder(folder: Path) -> dict[str, Any]:
    """Footprint of a saved model folder, from its safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise InputError(f"{folder}: no .safetensors files")
    config = json.loads((Path(folder) / "config.json").read_text())
    record_path = Path(folder) / "quantization.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    tensors: fp.TensorShapes = {}
    for file in files:
        with safe_open(str(file), framework="numpy") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                piece = handle.get_slice(name)
                tensors[name] = (piece.get_dtype(), piece.get_shape())
    quant = config.get("quantization_config") or {}
    if quant.get("quant_method") == "aqlm":
        group = quant["in_group_size"] * quant["out_group_size"]
        return measure_aqlm(tensors, quant["num_codebooks"], quant["nbits_per_codebook"], group)
    if quant.get("quant_method") in PACKED_FORMATS:
        return _measure_packed(tensors, quant["quant_method"], record)
    if record.get("method") == "rtn":  # de-quantized weights: the footprint is the packed size they stand for
        return parse_variant({"name": "folder", **record["config"]}).predict_footprint(tensors)
    return fp.unquantized(tensors)


def _measure_packed(tensors: fp.TensorShapes, quant_method: str, record: dict[str, Any]) -> dict[str, Any]:
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
        size = fp.nbytes(dtype, shape)
        owner = _owner(name, owners)
        if owner is None and dtype not in _INTEGER:
            unquantized_params += fp.numel(shape)
        if owner is None or name.endswith(".bias"):
            unquantized += size
        elif name in (f"{owner}.weight_packed", f"{owner}.weight"):
            codes += size
        else:
            scales += size
    quantized_params = record.get("quantized_parameters") or 0
    params = quantized_params + unquantized_params
    return fp.result(codes, 0, scales, unquantized, quantized_params, params, None, note=f"{quant_method} checkpoint")


def _owner(name: str, owners: set[str]) -> str | None:
    """The quantized layer a tensor belongs to (``layer.weight_scale``, bitsandbytes' ``layer.weight.absmax``)."""
    return next((o for o in (name.rpartition(".")[0], name.split(".weight.")[0]) if o in owners), None)


def shapes_from_config(config: Path | dict[str, Any], dtype: str = "float16") -> fp.TensorShapes:
    """The tensors a model config implies (instantiated on the meta device: no weights, no download), each in
    ``dtype`` (float32, float16, bfloat16 or fp32, fp16, bf16)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if dtype not in fp.SAFETENSORS_DTYPE:
        raise InputError(f"dtype: must be one of {', '.join(fp.SAFETENSORS_DTYPE)}, got {dtype!r}")
    if isinstance(config, dict):
        data = config
    else:
        try:
            data = json.loads(Path(config).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{config}: cannot read the model config ({exc})") from None
    data = {k: v for k, v in data.items() if k != "quantization_config"}
    if not data.get("model_type"):
        raise InputError(f"{config}: field 'model_type' is missing")
    hf_config = AutoConfig.for_model(**data)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    kept = fp.SAFETENSORS_DTYPE[dtype]
    return {
        name: (kept, list(tensor.shape))
        for name, tensor in model.state_dict().items()
        if not (name == "lm_head.weight" and getattr(hf_config, "tie_word_embeddings", False))
    }
