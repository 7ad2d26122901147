"""Loading a causal LM for quantization and walking its transformer blocks."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codequant.errors import InputError
from codequant.keys import stable_hash

#: Linear layers of a block that read the same input, in the order the block uses them (Llama family names).
SEQUENTIAL_GROUPS = (
    ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    ("self_attn.o_proj",),
    ("mlp.gate_proj", "mlp.up_proj"),
    ("mlp.down_proj",),
)


def load_config(model: str, dtype: str = "auto") -> tuple[Any, torch.dtype]:
    """(config of a full-precision model, dtype to save unquantized tensors in); InputError if unusable."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model)
    except OSError as exc:
        raise InputError(f"cannot load model {model!r}: {str(exc).splitlines()[0]}") from None
    if getattr(config, "quantization_config", None) is not None:
        raise InputError(f"{model} is already quantized; quantize its full-precision original")
    saved = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    if isinstance(saved, str):
        saved = getattr(torch, saved)
    if dtype != "auto":
        saved = getattr(torch, dtype)
    return config, saved


def load_for_quantization(model: str, dtype: str = "auto", device: str = "cpu") -> tuple[Any, Any, torch.dtype]:
    """(model in float32 on ``device``, tokenizer, dtype to save unquantized tensors in)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, saved = load_config(model, dtype)
    loaded = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).to(device)
    loaded.eval()
    loaded.config.use_cache = False
    tokenizer = AutoTokenizer.from_pretrained(model)
    return loaded, tokenizer, saved


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks (model.model.layers for the Llama family; else the block list of the right length)."""
    inner = getattr(model, "model", None)
    if inner is not None and isinstance(getattr(inner, "layers", None), nn.ModuleList):
        return inner.layers
    count = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise InputError(f"cannot find the transformer blocks of {model.__class__.__name__}")


def linear_groups(block: nn.Module) -> list[list[tuple[str, nn.Linear]]]:
    """The block's linear layers in groups that share an input, in forward order."""
    linears = {name: module for name, module in block.named_modules() if isinstance(module, nn.Linear)}
    if all(name in linears for group in SEQUENTIAL_GROUPS for name in group) and len(linears) == sum(
        len(g) for g in SEQUENTIAL_GROUPS
    ):
        return [[(name, linears[name]) for name in group] for group in SEQUENTIAL_GROUPS]
    return [[(name, module)] for name, module in linears.items()]


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def module_path(name: str) -> str:
    return re.sub(r"\.weight$", "", name)


def source_weight_files(model: str) -> list[Path]:
    """The safetensors files of a local folder, or of a hub model already in the local cache."""
    folder = Path(model)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(model, allow_patterns=["*.safetensors"], local_files_only=True))
    return sorted(folder.glob("*.safetensors"))


@torch.no_grad()
def weight_errors(
    model: str, quantized: nn.Module, weight_of: Callable[[nn.Module], torch.Tensor] | None = None
) -> list[dict[str, Any]]:
    """Relative squared error ||W_q - W||^2 / ||W||^2 of every block linear layer against the original weights,
    read one tensor at a time from the source files (no second copy of the model in memory). ``weight_of``
    de-quantizes a layer whose ``weight`` is not the reconstruction itself."""
    from safetensors import safe_open

    layers = decoder_layers(quantized)
    layers_name = next(name for name, module in quantized.named_modules() if module is layers)
    wanted = {
        f"{layers_name}.{index}.{sub}.weight": (f"{index}.{sub}", module)
        for index, block in enumerate(layers)
        for sub, module in block.named_modules()
        if isinstance(module, nn.Linear)
    }
    records = []
    for file in source_weight_files(model):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                if key in wanted:
                    label, module = wanted[key]
                    weight = weight_of(module) if weight_of else module.weight
                    original = handle.get_tensor(key).float()
                    error = (weight.detach().float().cpu() - original).square().sum() / original.square().sum()
                    records.append({"name": label, "relative_weight_error": float(error)})
    return sorted(records, key=lambda r: [int(p) if p.isdigit() else p for p in r["name"].split(".")])


def model_identity(model: str) -> dict[str, Any]:
    """What identifies the input weights: a local folder's config and file sizes, or the hub id."""
    path = Path(model)
    if path.is_dir():
        files = sorted((f.name, f.stat().st_size) for f in path.iterdir() if f.suffix in (".safetensors", ".bin"))
        config = (path / "config.json").read_text() if (path / "config.json").exists() else ""
        return {"path": str(path.resolve()), "config": stable_hash(config), "files": files}
    return {"hub_id": model}
