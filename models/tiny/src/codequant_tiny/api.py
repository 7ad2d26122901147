"""The tiny model's public entry points beside its builder (``build_tiny_model``, the ``tiny-code`` builtin): the
recipes, the training steps a build runs (tokenizer and examples, then the training itself), and the shipped build's
folder, for tools and benchmarks."""

from __future__ import annotations

from codequant_tiny.build import RECIPES, Recipe, build_tiny_model, train_model, train_tiny_model, training_examples
from codequant_tiny.shipped import fixture as shipped_fixture

__all__ = [
    "RECIPES",
    "Recipe",
    "build_tiny_model",
    "shipped_fixture",
    "train_model",
    "train_tiny_model",
    "training_examples",
]
