"""Quantize one transformer block: XᵀX per linear layer, AQLM per layer, then fine-tune the block."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from codequant_quantizer.aqlm.activations import Activations
from codequant_quantizer.aqlm.layer import LayerSettings, QuantizedLayer, quantize_layer
from codequant_quantizer.aqlm.modules import AqLinear, replace_module
from codequant_quantizer.aqlm.stream import forward_all

#: Block fine-tuning after its layers are quantized: epochs at most, Adam's learning rate.
BLOCK_FINETUNE_EPOCHS = 5
BLOCK_FINETUNE_LR = 1e-4


@torch.no_grad()
def accumulate_xtx(
    block: nn.Module, layers: list[tuple[str, nn.Linear]], hidden: Activations, arguments: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """Mean XᵀX [in, in] of each listed layer's inputs over all calibration tokens."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(name: str) -> Callable:
        def accumulate(_module: nn.Module, args: tuple, _output: Any) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            sums[name] = sums.get(name, 0) + x.T @ x
            counts[name] = counts.get(name, 0) + x.shape[0]

        return accumulate

    handles = [module.register_forward_hook(hook(name)) for name, module in layers]
    try:
        forward_all(block, hidden, arguments)
    finally:
        for handle in handles:
            handle.remove()
    return {name: sums[name] / counts[name] for name in sums}


def quantize_block(
    block: nn.Module,
    block_index: int,
    groups: list[list[tuple[str, nn.Linear]]],
    hidden: Activations,
    arguments: dict[str, Any],
    settings: LayerSettings,
    on_layer: Callable[[dict[str, Any], QuantizedLayer], None],
) -> None:
    """Replace the linear layers of ``groups`` (``model_io.linear_groups`` of the full-precision block; layers
    already replaced, as after a resume, are skipped) by AqLinear layers, group by group: later groups see the
    quantized earlier ones, as the model will. Members of a group read the same input, so a group's XᵀX is the
    same whether or not some of its members are already quantized."""
    for group in groups:
        todo = [(name, linear) for name, linear in group if block.get_submodule(name) is linear]
        if not todo:
            continue
        xtx = accumulate_xtx(block, todo, hidden, arguments)
        for name, linear in todo:
            # Each layer has its own seed, so resuming after a crash reproduces the same codes.
            seed = settings.seed + zlib.crc32(f"{block_index}.{name}".encode())
            layer_settings = LayerSettings(**{**settings.__dict__, "seed": seed})
            result = quantize_layer(linear.weight.detach(), xtx[name], layer_settings)
            replace_module(block, name, AqLinear(result.codes, result.codebooks, result.scales, linear.bias))
            record = {
                "block": block_index,
                "name": name,
                "shape": list(linear.weight.shape),
                "relative_error": result.relative_error,
                "epochs": result.epochs,
                "seconds": round(result.seconds, 3),
            }
            on_layer(record, result)


def finetune_block(
    block: nn.Module,
    hidden: Activations,
    targets: Activations,
    arguments: dict[str, Any],
    *,
    epochs: int,
    lr: float,
    seed: int,
    batch: int = 8,
    tolerance: float = 1e-3,
) -> list[float]:
    """Adam on the block's continuous parameters (codebooks, scales, norms, biases) so that the quantized block
    reproduces the full-precision block's outputs; codes stay fixed. Returns the relative MSE per epoch."""
    params = [p for p in block.parameters() if p.dtype.is_floating_point]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    scale = targets.mean_square().clamp(min=1e-20)
    count = hidden.shape[0]
    history: list[float] = []
    for _ in range(epochs):
        order = torch.randperm(count, generator=generator)
        total = 0.0
        for start in range(0, count, batch):
            rows = order[start : start + batch]
            out = block(hidden.read(rows), **arguments)
            out = out[0] if isinstance(out, tuple) else out
            loss = (out - targets.read(rows)).square().mean() / scale
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        history.append(total / count)
        if len(history) > 1 and (history[-2] - history[-1]) / max(history[-2], 1e-20) < tolerance:
            break
    for p in params:
        p.requires_grad_(False)
    return history
