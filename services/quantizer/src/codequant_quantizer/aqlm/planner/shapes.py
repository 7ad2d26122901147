"""A model's shapes as the plan needs them, from its config alone (built on the meta device, no weights)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codequant.errors import InputError
from codequant_quantizer.model_io import decoder_layers, linear_groups


@dataclass(frozen=True)
class Linear:
    name: str
    out_features: int
    in_features: int


@dataclass(frozen=True)
class ModelShape:
    """What the plan needs of a model: its block's linear layers in quantization order (groups that share an
    input together), sizes of the rest."""

    hidden: int
    layers: int
    vocab: int
    groups: tuple[tuple[Linear, ...], ...]
    block_other_params: int  # norms and biases of one block
    outside_params: int  # embeddings, final norm, lm_head (once if tied)
    intermediate: int
    kv_width: int  # key/value projection width (grouped-query attention)

    @property
    def linears(self) -> list[Linear]:
        return [linear for group in self.groups for linear in group]

    @property
    def block_linear_params(self) -> int:
        return sum(x.out_features * x.in_features for x in self.linears)

    @property
    def block_params(self) -> int:
        return self.block_linear_params + self.block_other_params

    @property
    def params(self) -> int:
        return self.layers * self.block_params + self.outside_params


def load_model_config(model: str) -> dict[str, Any]:
    """A model's config.json as a dict: a file, a folder holding one, or a hub id (cache or hub)."""
    path = Path(model)
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path}: not a JSON model config ({exc})") from None
    if path.suffix == ".json" or path.parent != Path("."):
        raise InputError(f"{model}: no config.json there")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model).to_dict()
    except OSError as exc:
        raise InputError(f"cannot load the config of {model!r}: {str(exc).splitlines()[0]}") from None


def model_shape(config: dict[str, Any]) -> ModelShape:
    """Shapes of a causal LM built from ``config`` on the meta device (no weights are allocated)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    data = {k: v for k, v in config.items() if k != "quantization_config"}
    if not data.get("model_type"):
        raise InputError("model config: field 'model_type' is missing")
    try:
        hf_config = AutoConfig.for_model(**data)
    except (KeyError, ValueError) as exc:
        raise InputError(f"model config: {exc}") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    blocks = decoder_layers(model)
    block = blocks[0]
    groups = tuple(
        tuple(Linear(name, module.out_features, module.in_features) for name, module in group)
        for group in linear_groups(block)
    )
    linear_params = {id(p) for m in block.modules() if isinstance(m, nn.Linear) for p in [m.weight]}
    other = sum(p.numel() for p in block.parameters() if id(p) not in linear_params)
    in_blocks = {id(p) for b in blocks for p in b.parameters()}
    outside = sum(p.numel() for p in model.parameters() if id(p) not in in_blocks)
    names = {x.name: x for group in groups for x in group}
    kv = names.get("self_attn.k_proj")
    mlp = names.get("mlp.gate_proj") or names.get("mlp.up_proj")
    hidden = hf_config.hidden_size
    return ModelShape(
        hidden=hidden,
        layers=len(blocks),
        vocab=hf_config.vocab_size,
        groups=groups,
        block_other_params=other,
        outside_params=outside,
        intermediate=mlp.out_features if mlp else 4 * hidden,
        kv_width=kv.out_features if kv else hidden,
    )
