"""Quantize one linear layer with AQLM: residual k-means init, then alternate beam search and Adam."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from codequant_quantizer.aqlm.kmeans import kmeans, nearest
from codequant_quantizer.aqlm.search import beam_search
from codequant_quantizer.aqlm.weight import AqlmShape, dequantize, grouped, output_energy, relative_error


@dataclass
class LayerSettings:
    shape: AqlmShape
    beam_size: int = 8
    max_epochs: int = 100
    relative_tolerance: float = 0.01
    adam_steps: int = 100
    lr: float = 1e-4
    kmeans_iterations: int = 50
    seed: int = 0
    workspace_bytes: int = 1 << 30  # beam search scoring temporaries (see search.output_groups_per_pass)


@dataclass
class QuantizedLayer:
    codes: torch.Tensor  # [O, I, M] int64
    codebooks: torch.Tensor  # [M, K, og, ig]
    scales: torch.Tensor  # [O, 1, 1, 1]
    relative_error: float
    epochs: int
    seconds: float


def quantize_layer(weight: torch.Tensor, xtx: torch.Tensor, settings: LayerSettings) -> QuantizedLayer:
    """AQLM for one weight matrix [out, in] given XᵀX [in, in] of its calibration inputs (float32)."""
    start = time.monotonic()
    shape = settings.shape
    out, inp = weight.shape
    if inp % shape.in_group_size or out % shape.out_group_size:
        raise ValueError(
            f"a {out}x{inp} weight cannot be split into {shape.out_group_size}x{shape.in_group_size} groups"
        )
    weight = weight.float()
    xtx = xtx.float()
    generator = torch.Generator().manual_seed(settings.seed)
    codes, codebooks, scales = initialise(weight, shape, settings.kmeans_iterations, generator)
    energy = output_energy(weight, xtx)  # computed once: every error below is relative to it
    previous = float(relative_error(weight, dequantize(codes, codebooks, scales), xtx, energy))
    epochs = 0
    while epochs < settings.max_epochs:
        epochs += 1
        codebooks, scales = _adam(weight, xtx, energy, codes, codebooks, scales, settings)
        codes = beam_search(weight, xtx, codes, codebooks, scales, shape, settings.beam_size, settings.workspace_bytes)
        current = float(relative_error(weight, dequantize(codes, codebooks, scales), xtx, energy))
        improvement = (previous - current) / max(previous, 1e-20)
        previous = current
        if improvement < settings.relative_tolerance:
            break
    return QuantizedLayer(codes, codebooks.detach(), scales.detach(), previous, epochs, time.monotonic() - start)


@torch.no_grad()
def initialise(weight: torch.Tensor, shape: AqlmShape, iterations: int, generator: torch.Generator):
    """Scales = norm of each output group; codebooks by residual k-means on the scale-normalised groups."""
    groups = grouped(weight, shape)  # [O, I, og, ig]
    scales = groups.flatten(1).norm(dim=-1).clamp(min=1e-9).view(-1, 1, 1, 1)
    residual = (groups / scales).reshape(-1, shape.out_group_size * shape.in_group_size).clone()
    books, codes = [], []
    for _ in range(shape.num_codebooks):
        centroids = kmeans(residual, shape.codebook_size, iterations=iterations, generator=generator)
        assignment = nearest(residual, centroids)
        residual -= centroids[assignment]
        books.append(centroids.view(shape.codebook_size, shape.out_group_size, shape.in_group_size))
        codes.append(assignment.view(groups.shape[0], groups.shape[1]))
    return torch.stack(codes, dim=-1), torch.stack(books), scales


def _adam(weight, xtx, energy, codes, codebooks, scales, settings: LayerSettings):
    """Adam on codebooks and scales with the codes fixed, minimising the relative output error."""
    codebooks = codebooks.detach().clone().requires_grad_(True)
    scales = scales.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([codebooks, scales], lr=settings.lr, betas=(0.0, 0.95), amsgrad=True)
    for _ in range(settings.adam_steps):
        loss = relative_error(weight, dequantize(codes, codebooks, scales), xtx, energy)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return codebooks.detach(), scales.detach()
