"""codequant's CPU kernel for AQLM (compiled once, kept in numba's cache) gives the bytes aqlm's own kernel gives,
on the tiny model's layer shapes, one and two codebooks, with and without bias, one row and many."""

from __future__ import annotations

import pytest
import torch
from aqlm.inference_kernels.numba_kernel import numba_gemm_lut

from codequant_serving.aqlm_cpu import gemm_lut
from codequant_serving.loading import single_thread_numba


@pytest.mark.parametrize(("out_features", "in_features"), [(192, 192), (512, 192), (192, 512)])
@pytest.mark.parametrize("num_codebooks", [1, 2])
def test_same_bytes_as_aqlms_kernel(out_features: int, in_features: int, num_codebooks: int) -> None:
    single_thread_numba()  # as the server runs aqlm's kernel (more numba threads race in it)
    generator = torch.Generator().manual_seed(out_features + in_features + num_codebooks)
    codes = torch.randint(-128, 128, (in_features // 8, out_features, num_codebooks), dtype=torch.int8,
                          generator=generator)  # fmt: skip
    codebooks = torch.randn(num_codebooks, 256, 1, 8, generator=generator) * 0.1
    scales = torch.rand(out_features, 1, 1, 1, generator=generator)
    bias = torch.randn(out_features, generator=generator)
    for rows, with_bias in ((1, False), (3, True), (37, False)):
        x = torch.randn(2, rows, in_features, generator=generator)
        expected = numba_gemm_lut(x, codes, codebooks, scales, bias if with_bias else None)
        got = gemm_lut(x, codes, codebooks, scales, bias if with_bias else None)
        assert got.shape == expected.shape
        assert torch.equal(got, expected)


def test_refuses_what_it_does_not_compute() -> None:
    with pytest.raises(ValueError, match="8-bit codebooks"):
        gemm_lut(torch.randn(1, 16), torch.zeros(2, 8, 1, dtype=torch.int8), torch.randn(1, 16, 1, 8),
                 torch.ones(8, 1, 1, 1), None)  # fmt: skip
