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
from codequant.study.methods import format_class, parse_variant, quantized_methods


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
    method = format_class(quant.get("quant_method"))
    if method is not None:  # a format of its own (AQLM, compressed-tensors, bitsandbytes...)
        return method.measure_folder(tensors, quant, record)
    if record.get("method") in quantized_methods():  # de-quantized weights (RTN): the size they stand for
        return parse_variant({"name": "folder", **record["config"]}).predict_footprint(tensors)
    return fp.unquantized(tensors)


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
