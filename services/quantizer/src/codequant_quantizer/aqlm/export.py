"""Save an AQLM-quantized model as a Hugging Face folder that transformers + aqlm load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from codequant_quantizer.aqlm.modules import AqLinear


def pack_codes(codes: torch.Tensor, nbits: int) -> torch.Tensor:
    """Codes as the aqlm package stores them: signed int8 (B <= 8) or int16 (B <= 16), values wrapped."""
    data = codes.to(torch.int64).clone()
    data[data >= 2 ** (nbits - 1)] -= 2**nbits
    return data.to(torch.int8 if nbits <= 8 else torch.int16)


def aqlm_config(shape: Any, unquantized_linears: list[str]) -> dict[str, Any]:
    """quantization_config for transformers' AqlmConfig.

    linear_weights_not_to_quantize lists both `name.weight` (transformers 4.x matches weight names) and the
    module `name` (5.x matches module names; listing only the weight would silently quantize lm_head).
    """
    names = sorted({n for name in unquantized_linears for n in (f"{name}.weight", name)})
    return {
        "quant_method": "aqlm",
        "in_group_size": shape.in_group_size,
        "out_group_size": shape.out_group_size,
        "num_codebooks": shape.num_codebooks,
        "nbits_per_codebook": shape.nbits_per_codebook,
        "linear_weights_not_to_quantize": names,
    }


def save_aqlm(model: nn.Module, tokenizer: Any, shape: Any, out_dir: Path, dtype: torch.dtype) -> None:
    """Write safetensors (codes packed, codebooks and scales in float16, other tensors in ``dtype``), config,
    generation config and tokenizer into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    quantized = set()
    for name, module in model.named_modules():
        if isinstance(module, AqLinear):
            quantized.add(name)
            tensors[f"{name}.codes"] = pack_codes(module.codes, shape.nbits_per_codebook).contiguous()
            tensors[f"{name}.codebooks"] = module.codebooks.detach().to(torch.float16).contiguous()
            tensors[f"{name}.scales"] = module.scales.detach().to(torch.float16).contiguous()
            if module.bias is not None:
                tensors[f"{name}.bias"] = module.bias.detach().to(dtype).contiguous()
    for name, tensor in model.state_dict().items():
        owner = name.rpartition(".")[0]
        if owner in quantized:
            continue
        tensors[name] = tensor.detach().to(dtype).contiguous()
    if getattr(model.config, "tie_word_embeddings", False) and "lm_head.weight" in tensors:
        del tensors["lm_head.weight"]
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    unquantized = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    config = model.config.to_dict()
    config["quantization_config"] = aqlm_config(shape, unquantized)
    config["dtype"] = str(dtype).removeprefix("torch.")
    config.pop("torch_dtype", None)
    config["use_cache"] = True
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
