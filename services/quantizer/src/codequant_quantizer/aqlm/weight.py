"""One AQLM-quantized weight matrix: codes, codebooks, per-output-group scales; and its reconstruction."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AqlmShape:
    """Quantization settings of one matrix."""

    num_codebooks: int  # M
    nbits_per_codebook: int  # B
    in_group_size: int
    out_group_size: int

    @property
    def codebook_size(self) -> int:
        return 2**self.nbits_per_codebook


def dequantize(codes: torch.Tensor, codebooks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Weight [out, in] from codes [O, I, M], codebooks [M, K, og, ig] and scales [O, 1, 1, 1] (differentiable)."""
    num_out, num_in, m = codes.shape
    _, k, og, ig = codebooks.shape
    offsets = torch.arange(0, m * k, k, device=codes.device)
    # The codewords are gathered by an embedding lookup, not by indexing: indexing's backward (index_put_ with
    # accumulate) adds with atomics on a multi-threaded CPU, so Adam's codebooks changed from run to run.
    table = codebooks.reshape(m * k, og * ig)
    groups = torch.nn.functional.embedding(codes + offsets, table).sum(-2)  # sum of each group's M codewords
    groups = groups.view(num_out, num_in, og, ig) * scales
    return groups.permute(0, 2, 1, 3).reshape(num_out * og, num_in * ig)


def grouped(weight: torch.Tensor, shape: AqlmShape) -> torch.Tensor:
    """[out, in] -> [O, I, og, ig]."""
    out, inp = weight.shape
    og, ig = shape.out_group_size, shape.in_group_size
    return weight.reshape(out // og, og, inp // ig, ig).permute(0, 2, 1, 3)


def output_energy(weight: torch.Tensor, xtx: torch.Tensor) -> torch.Tensor:
    """tr(W XᵀX Wᵀ) (at least 1e-20): ``relative_error``'s denominator, the same for every reconstruction of W."""
    return (weight @ xtx * weight).sum().clamp(min=1e-20)


def relative_error(
    weight: torch.Tensor, reconstruction: torch.Tensor, xtx: torch.Tensor, energy: torch.Tensor | None = None
) -> torch.Tensor:
    """tr((W - Ŵ) XᵀX (W - Ŵ)ᵀ) / tr(W XᵀX Wᵀ): the layer's output error on the calibration data, relative.
    ``energy``: ``output_energy(weight, xtx)`` when the caller has it already (the same value, not recomputed)."""
    error = weight - reconstruction
    return (error @ xtx * error).sum() / (output_energy(weight, xtx) if energy is None else energy)
