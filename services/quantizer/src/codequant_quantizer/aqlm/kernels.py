"""Quantized forward passes through the ``aqlm`` package's kernels, for end-to-end fine-tuning on a GPU.

aqlm 1.1 runs a quantized layer with CUDA kernels for 1x16 codebooks (groups of 8 or 16), 2x8 and 1x8 (groups
of 8), in float16 or bfloat16; with Triton for other shapes (inference, one row at a time); with numba on the
CPU for 8-bit codebooks; and by de-quantizing then multiplying otherwise. Its own autograd functions return no
gradient for codebooks or scales, which fine-tuning trains. KernelAqLinear therefore takes the output and the
input's gradient from the kernels aqlm's dispatch picks for training (``get_forward_pass_kernel(codebooks,
optimize_for_training=True)``: the ``*_matmat_dequant`` CUDA kernels, else de-quantize and multiply) and computes
the codebooks' and scales' gradients itself, from the dense weight gradient gradᵀx pulled back through the
differentiable decode (``weight.dequantize``): the gradient AqLinear's plain autograd gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from codequant_quantizer.aqlm.export import pack_codes
from codequant_quantizer.aqlm.modules import AqLinear, replace_module
from codequant_quantizer.aqlm.weight import dequantize

Kernel = Callable[..., torch.Tensor]


def training_kernels(codebooks: torch.Tensor) -> tuple[Kernel, Kernel]:
    """(forward, input-gradient) kernels aqlm chooses for codebooks like these on their device, for training."""
    from aqlm.inference_kernels import get_backward_pass_kernel, get_forward_pass_kernel

    return get_forward_pass_kernel(codebooks, True), get_backward_pass_kernel(codebooks, True)


class _KernelMatmul(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        codebooks: torch.Tensor,
        scales: torch.Tensor,
        bias: torch.Tensor | None,
        layer: KernelAqLinear,
    ) -> torch.Tensor:
        forward_kernel, _ = layer.kernels()
        dtype = x.dtype
        out = forward_kernel(
            x,
            layer.forward_codes,
            codebooks.to(dtype),
            scales.to(dtype),
            None if bias is None else bias.to(dtype),
        )
        ctx.save_for_backward(x, codebooks, scales)
        ctx.layer, ctx.has_bias = layer, bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, codebooks, scales = ctx.saved_tensors
        layer: KernelAqLinear = ctx.layer
        _, input_kernel = layer.kernels()
        grad = grad.contiguous()
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = input_kernel(grad, layer.packed, codebooks.to(grad.dtype), scales.to(grad.dtype), None)
        flat = grad.reshape(-1, grad.shape[-1]).float()
        weight_grad = flat.T @ x.reshape(-1, x.shape[-1]).float()  # dL/dW, [out, in]
        with torch.enable_grad():
            books = codebooks.detach().requires_grad_(True)
            factors = scales.detach().requires_grad_(True)
            weight = dequantize(layer.codes(), books, factors)
            grad_books, grad_scales = torch.autograd.grad(weight, (books, factors), weight_grad)
        grad_bias = flat.sum(0) if ctx.has_bias else None
        return grad_x, grad_books, grad_scales, grad_bias, None


class KernelAqLinear(nn.Module):
    """An AqLinear's trainable codebooks, scales and bias (the same Parameter objects) with its codes packed as aqlm
    stores them, running through aqlm's kernels in ``compute_dtype``."""

    def __init__(self, source: AqLinear, nbits: int, compute_dtype: torch.dtype) -> None:
        super().__init__()
        self.codebooks, self.scales, self.bias = source.codebooks, source.scales, source.bias
        self.register_buffer("packed", pack_codes(source.codes, nbits))
        self.nbits, self.compute_dtype = nbits, compute_dtype
        self.out_features, self.in_features = source.out_features, source.in_features
        self._kernels: tuple[Kernel, Kernel] | None = None
        self._forward_codes: torch.Tensor | None = None

    def kernels(self) -> tuple[Kernel, Kernel]:
        if self._kernels is None:
            self._kernels = training_kernels(self.codebooks.detach().to(self.compute_dtype))
        return self._kernels

    @property
    def forward_codes(self) -> torch.Tensor:
        """Codes in the layout the forward kernel reads: aqlm's numba kernel (CPU, 8-bit codebooks) wants them
        [in groups, out groups, M], as aqlm's QuantizedLinear arranges them; every other kernel [out, in, M]."""
        if self._forward_codes is None or self._forward_codes.device != self.packed.device:
            numba = self.kernels()[0].__name__ == "numba_gemm_lut"
            self._forward_codes = self.packed.permute(1, 0, 2).contiguous() if numba else self.packed
        return self._forward_codes

    def codes(self) -> torch.Tensor:
        """Codes as indices (aqlm stores them signed)."""
        return self.packed.to(torch.int64) % (1 << self.nbits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _KernelMatmul.apply(x.to(self.compute_dtype).contiguous(), self.codebooks, self.scales, self.bias, self)


@contextmanager
def kernel_linears(model: nn.Module, nbits: int, compute_dtype: torch.dtype) -> Iterator[int]:
    """Swap every AqLinear of ``model`` for a KernelAqLinear sharing its parameters (yields how many), and back."""
    sources = {name: module for name, module in model.named_modules() if isinstance(module, AqLinear)}
    for name, module in sources.items():
        replace_module(model, name, KernelAqLinear(module, nbits, compute_dtype))
    try:
        yield len(sources)
    finally:
        for name, module in sources.items():
            replace_module(model, name, module)
