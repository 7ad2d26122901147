"""AQLM on single matrices: error falls with bits, seeds reproduce codes, beam search never hurts."""

from __future__ import annotations

import pytest
import torch

from codequant_quantizer.aqlm.kmeans import kmeans
from codequant_quantizer.aqlm.layer import LayerSettings, initialise, quantize_layer
from codequant_quantizer.aqlm.search import beam_search
from codequant_quantizer.aqlm.weight import AqlmShape, dequantize, relative_error
from codequant_quantizer.methods.rtn import rtn_weight


@pytest.fixture(scope="module")
def layer() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(128, 128, generator=generator)
    inputs = torch.randn(2048, 128, generator=generator) @ torch.randn(128, 128, generator=generator) * 0.2
    return weight, inputs.T @ inputs / inputs.shape[0]


def settings(m: int, seed: int = 0) -> LayerSettings:
    return LayerSettings(AqlmShape(m, 8, 8, 1), beam_size=4, max_epochs=4, adam_steps=50, seed=seed)


def test_error_falls_as_codebooks_are_added(layer) -> None:
    weight, xtx = layer
    errors = [quantize_layer(weight, xtx, settings(m)).relative_error for m in (1, 2, 3, 4)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 4, errors


def test_aqlm_beats_round_to_nearest_at_the_same_code_bits(layer) -> None:
    weight, xtx = layer
    aqlm = quantize_layer(weight, xtx, settings(2)).relative_error
    assert aqlm < float(relative_error(weight, rtn_weight(weight, 2, 128, False), xtx)) / 2


def test_same_seed_same_codes_and_another_seed_differs(layer) -> None:
    weight, xtx = layer
    first, again = (quantize_layer(weight, xtx, settings(1, seed=3)) for _ in range(2))
    other = quantize_layer(weight, xtx, settings(1, seed=4))
    assert torch.equal(first.codes, again.codes) and torch.equal(first.codebooks, again.codebooks)
    assert not torch.equal(first.codes, other.codes)


def test_beam_search_never_increases_the_error(layer) -> None:
    weight, xtx = layer
    shape = AqlmShape(2, 8, 8, 1)
    codes, books, scales = initialise(weight, shape, 10, torch.Generator().manual_seed(0))
    before = relative_error(weight, dequantize(codes, books, scales), xtx)
    for beam in (1, 4):
        improved = beam_search(weight, xtx, codes, books, scales, shape, beam)
        assert relative_error(weight, dequantize(improved, books, scales), xtx) <= before + 1e-7


def test_dequantize_matches_the_definition() -> None:
    codes = torch.tensor([[[1, 0], [0, 1]]])  # 1 output group, 2 input groups, 2 codebooks
    books = torch.arange(2 * 2 * 1 * 2, dtype=torch.float32).view(2, 2, 1, 2)  # [M, K, og, ig]
    scales = torch.tensor([2.0]).view(1, 1, 1, 1)
    expected = 2 * torch.cat([books[0, 1, 0] + books[1, 0, 0], books[0, 0, 0] + books[1, 1, 0]])
    assert torch.equal(dequantize(codes, books, scales), expected.view(1, 4))


def test_kmeans_needs_enough_groups() -> None:
    with pytest.raises(ValueError, match="at least 256 points"):
        kmeans(torch.randn(100, 8), 256, generator=torch.Generator().manual_seed(0))
