"""The decode batch's KV cache: in-place appends, and the row surgery continuous batching needs.

transformers' ``DynamicLayer`` concatenates every new token onto its keys and values (a copy of the whole
cache per token) and has no way to join two batches. ``GrowingLayer`` keeps keys and values in buffers with
room at the end, so a token is written in place; ``merge`` left-pads and joins two batches, ``trim_left``
drops columns that are padding in every row. A model whose cache transformers builds from other layer types
(sliding windows, linear attention) keeps its own cache, and the engine then runs one batch at a time.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

GROW_TOKENS = 256  # room added at the end of a layer's buffers when they are full


class GrowingLayer(DynamicLayer):
    """A DynamicLayer whose keys/values ([batch, heads, tokens, head_dim]) are views of larger buffers."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self.length = 0
        self._keys = self._values = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        if self._keys is None or self.length + new > self._keys.shape[-2]:
            self._reserve(key_states, value_states, self.length + new + GROW_TOKENS)
        self._keys[:, :, self.length : self.length + new] = key_states
        self._values[:, :, self.length : self.length + new] = value_states
        self._set_length(self.length + new)
        return self.keys, self.values

    def _reserve(self, key_like: torch.Tensor, value_like: torch.Tensor, capacity: int) -> None:
        keys = key_like.new_empty((*key_like.shape[:2], capacity, key_like.shape[-1]))
        values = value_like.new_empty((*value_like.shape[:2], capacity, value_like.shape[-1]))
        if self.length:
            keys[:, :, : self.length] = self.keys
            values[:, :, : self.length] = self.values
        self._keys, self._values = keys, values

    def _set_length(self, length: int) -> None:
        self.length = length
        self.keys = self._keys[:, :, :length]
        self.values = self._values[:, :, :length]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.length:
            self._keys, self._values = self._keys[indices], self._values[indices]
            self._set_length(self.length)

    def join(self, other: GrowingLayer, width: int) -> None:
        """Append ``other``'s rows; both right-aligned in ``width`` columns (zeros on the left, masked out)."""
        rows = self._keys.shape[0] + other._keys.shape[0]
        keys = self._keys.new_zeros((rows, self._keys.shape[1], width + GROW_TOKENS, self._keys.shape[-1]))
        values = self._values.new_zeros((rows, self._values.shape[1], width + GROW_TOKENS, self._values.shape[-1]))
        for start, layer in ((0, self), (self._keys.shape[0], other)):
            stop = start + layer._keys.shape[0]
            keys[start:stop, :, width - layer.length : width] = layer.keys
            values[start:stop, :, width - layer.length : width] = layer.values
        self._keys, self._values = keys, values
        self._set_length(width)

    def drop_left(self, columns: int) -> None:
        self._keys, self._values = self._keys[:, :, columns:], self._values[:, :, columns:]
        self._set_length(self.length - columns)


class GrowingCache(DynamicCache):
    """A DynamicCache made of GrowingLayers."""

    def __init__(self) -> None:
        Cache.__init__(self, layer_class_to_replicate=GrowingLayer)


def plain_attention(model: Any) -> bool:
    """Whether the cache transformers builds for ``model`` is plain DynamicLayers (so a GrowingCache can replace it)."""
    own = DynamicCache(config=model.config)
    return all(type(layer) is DynamicLayer for layer in own.layers)


def can_merge(cache: Any) -> bool:
    """Whether ``merge`` and ``trim_left`` can handle this cache."""
    return isinstance(cache, GrowingCache) and all(layer.is_initialized for layer in cache.layers)


def select_rows(cache: Any, index: torch.Tensor) -> None:
    """Keep (or repeat) the rows ``index`` of every layer, in place."""
    cache.batch_select_indices(index)


def merge(cache: Any, mask: torch.Tensor, other: Any, other_mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """``cache`` with ``other``'s rows appended, both left-padded to the longer one; and the joint mask."""
    width = max(mask.shape[1], other_mask.shape[1])
    for layer, extra in zip(cache.layers, other.layers, strict=True):
        layer.join(extra, width)
    return cache, torch.cat([_pad_left(mask, width), _pad_left(other_mask, width)])


def trim_left(cache: Any, mask: torch.Tensor) -> torch.Tensor:
    """Drop the leading columns that are padding in every row (left by rows that finished); the new mask."""
    first = int(mask.any(0).int().argmax())
    if first == 0:
        return mask
    for layer in cache.layers:
        layer.drop_left(first)
    return mask[:, first:]


def _pad_left(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    return mask if missing == 0 else torch.cat([mask.new_zeros((mask.shape[0], missing)), mask], dim=1)
