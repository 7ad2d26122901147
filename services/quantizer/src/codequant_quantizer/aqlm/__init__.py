"""AQLM: additive quantization of language models (Egiazarian et al., ICML 2024), implemented from the paper.

No maintained library quantizes with AQLM (the `aqlm` package only runs quantized models), so the
algorithm lives here: residual k-means initialisation, beam search over codes under the calibration
Hessian proxy XᵀX, Adam updates of codebooks and scales, block fine-tuning, and export to the
format transformers + aqlm load.

Modules, highest first: ``pipeline`` (a whole model, resumable), ``planner`` (its memory and time plan), the
block level (``block``, ``checkpoint``, ``distill``, ``kernels``, ``meter``), the layer level (``layer``,
``export``, ``stream``), the primitives (``kmeans``, ``search``, ``modules``, ``activations``) and ``weight`` (the
format); `lint-imports` keeps that order. What this package exports is its public surface: the pieces the
benchmarks time one by one (``benchmarks/aqlm_plan.py``, ``benchmarks/device_check.py``).
"""

from __future__ import annotations

from codequant_quantizer.aqlm.activations import Activations
from codequant_quantizer.aqlm.block import accumulate_xtx
from codequant_quantizer.aqlm.kernels import KernelAqLinear
from codequant_quantizer.aqlm.layer import LayerSettings, QuantizedLayer, quantize_layer
from codequant_quantizer.aqlm.modules import AqLinear
from codequant_quantizer.aqlm.stream import block_inputs
from codequant_quantizer.aqlm.weight import AqlmShape

__all__ = [
    "Activations",
    "AqLinear",
    "AqlmShape",
    "KernelAqLinear",
    "LayerSettings",
    "QuantizedLayer",
    "accumulate_xtx",
    "block_inputs",
    "quantize_layer",
]
