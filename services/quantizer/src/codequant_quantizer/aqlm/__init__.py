"""AQLM: additive quantization of language models (Egiazarian et al., ICML 2024), implemented from the paper.

No maintained library quantizes with AQLM (the `aqlm` package only runs quantized models), so the
algorithm lives here: residual k-means initialisation, beam search over codes under the calibration
Hessian proxy XᵀX, Adam updates of codebooks and scales, block fine-tuning, and export to the
format transformers + aqlm load.
"""
