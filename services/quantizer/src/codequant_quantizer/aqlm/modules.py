"""AqLinear: a linear layer whose weight is AQLM codes (fixed) times trainable codebooks and scales."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codequant_quantizer.aqlm.weight import dequantize


class AqLinear(nn.Module):
    """Used while quantizing and fine-tuning; exported to the `aqlm` package's format afterwards."""

    def __init__(
        self, codes: torch.Tensor, codebooks: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None
    ) -> None:
        super().__init__()
        self.register_buffer("codes", codes.to(torch.int32))  # indices < 2^16: int32 halves int64's memory
        self.codebooks = nn.Parameter(codebooks.float())
        self.scales = nn.Parameter(scales.float())
        self.bias = nn.Parameter(bias.detach().float()) if bias is not None else None
        self.out_features = codes.shape[0] * codebooks.shape[2]
        self.in_features = codes.shape[1] * codebooks.shape[3]

    def weight(self) -> torch.Tensor:
        return dequantize(self.codes, self.codebooks, self.scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


def replace_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)
