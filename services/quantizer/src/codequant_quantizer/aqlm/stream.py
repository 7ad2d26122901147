"""Calibration data through the model one block at a time: the inputs of the first block, and a block applied to
every sequence, batch by batch, from one activation buffer into another."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from codequant_quantizer.aqlm.activations import Activations
from codequant_quantizer.model_io import decoder_layers

#: Sequences per forward pass of a block.
BLOCK_BATCH = 8


class _Stop(Exception):
    pass


@torch.no_grad()
def block_inputs(
    model: nn.Module, input_ids: torch.Tensor, dest: Activations | None, device: torch.device | None = None
) -> dict[str, Any]:
    """Write the hidden states entering the first block for each calibration sequence into ``dest`` and return
    the block's keyword arguments (rotary embeddings, masks: the same for every sequence, all being equally long)
    on ``dest``'s compute device. Without ``dest`` (a resumed run) only the arguments, on ``device``. The model
    runs where it is (in host memory), its input embeddings in float32 so that low-precision checkpoints give
    float32 rotary embeddings, as a float32 model does."""
    layers = decoder_layers(model)
    embeddings = model.get_input_embeddings()
    original = embeddings.weight.dtype
    arguments: dict[str, Any] = {}
    row = 0

    def catch(_module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        nonlocal row
        hidden = args[0] if args else kwargs.pop("hidden_states")
        if dest is not None:
            dest.write(row, hidden)
        row += 1
        arguments.update({k: v for k, v in kwargs.items() if k != "hidden_states"})
        raise _Stop

    handle = layers[0].register_forward_pre_hook(catch, with_kwargs=True)
    embeddings.float()
    try:
        for ids in input_ids:
            with contextlib.suppress(_Stop):
                model(input_ids=ids.unsqueeze(0).to(embeddings.weight.device), use_cache=False)
    finally:
        handle.remove()
        embeddings.to(original)
    arguments.pop("past_key_values", None)
    arguments.pop("past_key_value", None)
    arguments["use_cache"] = False
    return _to_device(arguments, dest.device if dest is not None else device)


def forward_all(
    block: nn.Module, source: Activations, arguments: dict[str, Any], dest: Activations | None = None
) -> None:
    """The block applied to every sequence of ``source`` in batches; outputs written to ``dest`` when given (it may
    be ``source`` itself: each batch is read before its rows are overwritten)."""
    for start, hidden in source.batches(BLOCK_BATCH):
        out = block(hidden, **arguments)
        if dest is not None:
            dest.write(start, out[0] if isinstance(out, tuple) else out)


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple | list):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value
