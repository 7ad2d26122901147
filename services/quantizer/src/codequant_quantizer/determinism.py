"""Deterministic torch for quantization runs: the same seed gives the same codes, on CPU and on CUDA.

In deterministic mode PyTorch refuses cuBLAS matmuls unless ``CUBLAS_WORKSPACE_CONFIG`` fixes cuBLAS's
workspace (":4096:8" or ":16:8", NVIDIA's cuBLAS reproducibility notes), and it reads the workspace size
once, when cuBLAS first runs: so the variable is set when this module is imported — before anything in a
quantization run starts CUDA — and checked again when deterministic mode is switched on.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)

CUBLAS_WORKSPACE_CONFIG = "CUBLAS_WORKSPACE_CONFIG"
#: The settings PyTorch accepts as deterministic; the first is the one we set.
DETERMINISTIC_WORKSPACES = (":4096:8", ":16:8")


def set_cublas_workspace() -> bool:
    """Put a deterministic cuBLAS workspace setting into the environment unless one is there; True if set now."""
    if os.environ.get(CUBLAS_WORKSPACE_CONFIG) in DETERMINISTIC_WORKSPACES:
        return False
    os.environ[CUBLAS_WORKSPACE_CONFIG] = DETERMINISTIC_WORKSPACES[0]
    return True


def deterministic_torch(*, warn_only: bool) -> None:
    """Switch on deterministic algorithms with a deterministic cuBLAS workspace and no TF32 matmuls (CUDA's
    float32 matmuls then round like the CPU's, which the CPU-vs-GPU agreement of AQLM codes relies on)."""
    if set_cublas_workspace() and torch.cuda.is_initialized():
        log.warning(
            "%s was set after CUDA started: if cuBLAS already ran in this process its workspace is not fixed; "
            "set %s=%s in the environment of the process",
            CUBLAS_WORKSPACE_CONFIG,
            CUBLAS_WORKSPACE_CONFIG,
            DETERMINISTIC_WORKSPACES[0],
        )
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.fp32_precision = "ieee"
    else:  # older torch, e.g. a GPU image's own build
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


set_cublas_workspace()
