"""Row surgery on transformers' DynamicCache for continuous batching: join two batches, drop rows, trim padding.

transformers has no API to concatenate two caches along the batch, so this pads and concatenates each
layer's key/value tensors ([batch, heads, tokens, head_dim]) itself. Only caches made of plain
``DynamicLayer`` qualify (the default for Llama-family models); sliding-window or other layer types keep
a position-dependent window, and the engine then runs one batch at a time.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


def can_merge(cache: Any) -> bool:
    """Whether ``merge`` and ``trim_left`` can handle this cache."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)


def select_rows(cache: Any, index: torch.Tensor) -> None:
    """Keep (or repeat) the rows ``index`` of every layer, in place."""
    cache.batch_select_indices(index)


def merge(cache: Any, mask: torch.Tensor, other: Any, other_mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """``cache`` with ``other``'s rows appended, both left-padded to the longer one; and the joint mask."""
    width = max(mask.shape[1], other_mask.shape[1])
    for layer, extra in zip(cache.layers, other.layers, strict=True):
        layer.keys = torch.cat([_pad_left(layer.keys, width, 2), _pad_left(extra.keys, width, 2)])
        layer.values = torch.cat([_pad_left(layer.values, width, 2), _pad_left(extra.values, width, 2)])
    return cache, torch.cat([_pad_left(mask, width, 1), _pad_left(other_mask, width, 1)])


def trim_left(cache: Any, mask: torch.Tensor) -> torch.Tensor:
    """Drop the leading columns that are padding in every row (left by rows that finished); the new mask."""
    first = int(mask.any(0).int().argmax())
    if first == 0:
        return mask
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, first:]
        layer.values = layer.values[:, :, first:]
    return mask[:, first:]


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)
