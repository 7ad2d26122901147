"""aqlm's CPU kernel for 8-bit codebooks with the same arithmetic, compiled once per machine instead of once per
process and layer shape.

aqlm 1.1.7's ``numba_gemm_lut`` compiles a numba closure for every layer shape in every process (about 1.3-2.6 s
of CPU each: a served AQLM model of three shapes spent ~5 s compiling before its first token) and calls it once per
row. This kernel takes the shapes as arguments, so numba compiles it once and keeps it in its on-disk cache
(``cache=True``), and loops over the rows itself. Per row it computes what aqlm's does, in the same order: the
lookup table by the same matrix product (numba's BLAS call), then for each input group, each output, each codebook
one float32 addition (aqlm's ``prange`` runs on one numba thread, see ``loading.single_thread_numba``), then the
scales. tests/serving/test_aqlm_cpu.py checks the bytes against aqlm's kernel.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import torch


@numba.njit(cache=True)
def _gemm_lut(x: Any, codebooks: Any, codes: Any, scales: Any, out: Any) -> None:  # pragma: no cover - numba
    num_codebooks, codebook_size, in_group_size = codebooks.shape[0], codebooks.shape[1], codebooks.shape[3]
    num_input_groups, out_features = codes.shape[0], codes.shape[1]
    flat = codebooks.reshape(-1, in_group_size)
    for row in range(x.shape[0]):
        lut = x[row].reshape(-1, in_group_size) @ flat.T
        lut = lut.reshape(-1, num_codebooks, codebook_size)
        output_vec = np.zeros(out_features, dtype=x.dtype)
        for j in range(num_input_groups):
            for i in range(out_features):
                for c in range(num_codebooks):
                    output_vec[i] += lut[j, c, codes[j, i, c]]
        output_vec *= scales
        out[row] = output_vec


def gemm_lut(
    input: torch.Tensor,
    codes: torch.Tensor,
    codebooks: torch.Tensor,
    scales: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """``aqlm.inference_kernels.numba_kernel.numba_gemm_lut``'s signature and result (codes [in groups, out
    groups, M] int8; codebooks [M, 256, 1, in group] float32)."""
    shape = input.shape
    rows = input.reshape(-1, shape[-1]).contiguous()
    out_features = codes.shape[1] * codebooks.shape[2]
    if codebooks.shape[1] != 256 or codes.dtype != torch.int8 or rows.dtype != torch.float32:
        raise ValueError("the CPU kernel takes 8-bit codebooks, int8 codes and float32 inputs")
    output = torch.empty(rows.shape[0], out_features, dtype=codebooks.dtype)
    _gemm_lut(
        rows.numpy(),
        codebooks.contiguous().numpy(),
        codes.view(torch.uint8).numpy(),
        scales.flatten().contiguous().numpy(),
        output.numpy(),
    )
    if bias is not None:
        output += bias
    return output.reshape((*shape[:-1], -1))


def install() -> None:
    """Make aqlm's CPU layers call ``gemm_lut`` (aqlm looks its kernel up in its module on every forward)."""
    from aqlm.inference_kernels import numba_kernel

    numba_kernel.numba_gemm_lut = gemm_lut
