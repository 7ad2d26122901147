"""Load any model transformers can run: full precision, AQLM folders (legacy configs fixed), other quantizers."""

from __future__ import annotations

import logging
from typing import Any

from codequant.errors import InputError, ServiceError

log = logging.getLogger(__name__)
DTYPES = ("auto", "float32", "float16", "bfloat16")


def fix_aqlm_config(quantization_config: dict[str, Any]) -> dict[str, Any]:
    """List both `name.weight` and the module `name` in linear_weights_not_to_quantize.

    AQLM's converter and published checkpoints list only `lm_head.weight`; transformers 5 matches module
    names and would replace lm_head with a QuantizedLinear whose codes are missing (random weights, silently).
    Listing both loads correctly in 4.57 and 5.x.
    """
    if quantization_config.get("quant_method") != "aqlm":
        return quantization_config
    names = list(quantization_config.get("linear_weights_not_to_quantize") or [])
    for name in list(names):
        if name.endswith(".weight") and name.removesuffix(".weight") not in names:
            names.append(name.removesuffix(".weight"))
    return {**quantization_config, "linear_weights_not_to_quantize": names}


def load_model(model: str, *, dtype: str = "auto", device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) for a local folder or hub id, in eval mode on ``device``.

    The dtype decides which aqlm kernel runs an AQLM layer (aqlm picks it per layer from the device, the
    codebook shape and the activations' dtype). On CPU, AQLM models run in float32: the numba kernel for 8-bit
    codebooks needs float32 activations (and one numba thread, see ``prepare_thread``). On CUDA, aqlm's CUDA
    kernels (1x16, 2x8, 1x8 with groups of 8) and its Triton kernel (other shapes) take float16 or bfloat16
    only: ``auto`` means the checkpoint's half dtype (float16 when it records none), float32 is refused.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    try:
        config = AutoConfig.from_pretrained(model)
    except OSError as exc:
        raise InputError(f"cannot load model {model!r}: {str(exc).splitlines()[0]}") from None
    quantization = getattr(config, "quantization_config", None)
    quant_method = None
    if quantization is not None:
        quantization = quantization if isinstance(quantization, dict) else quantization.to_dict()
        quant_method = quantization.get("quant_method")
        config.quantization_config = fix_aqlm_config(quantization)
    torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
    if quant_method == "aqlm" and device == "cpu":
        torch_dtype = torch.float32
    elif quant_method == "aqlm":
        torch_dtype = aqlm_cuda_dtype(dtype, getattr(config, "dtype", None))
    elif dtype == "auto" and device == "cpu" and quant_method is None:
        torch_dtype = torch.float32  # half precision matmuls are slow or missing on CPUs
    try:
        loaded = AutoModelForCausalLM.from_pretrained(model, config=config, dtype=torch_dtype, device_map=device)
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError, ImportError) as exc:
        raise ServiceError(f"cannot load model {model!r}: {str(exc).splitlines()[0]}") from None
    loaded.eval()
    prepare_thread(loaded)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return loaded, tokenizer


def aqlm_cuda_dtype(requested: str, recorded: Any) -> Any:
    """The activation dtype of an AQLM model on CUDA: float16 or bfloat16, which aqlm's GPU kernels require."""
    import torch

    if requested == "float32":
        raise InputError("aqlm's CUDA and Triton kernels take float16 or bfloat16: use --dtype auto|float16|bfloat16")
    if requested != "auto":
        return getattr(torch, requested)
    recorded = getattr(torch, recorded, None) if isinstance(recorded, str) else recorded
    return recorded if recorded in (torch.float16, torch.bfloat16) else torch.float16


def prepare_thread(model: Any) -> None:
    """Call in every thread that runs ``model``: the numba setting below is per thread."""
    quantization = getattr(model.config, "quantization_config", None)
    method = (
        quantization.get("quant_method")
        if isinstance(quantization, dict)
        else getattr(quantization, "quant_method", None)
    )
    if method == "aqlm" and model.device.type == "cpu":
        from codequant_serving import aqlm_cpu

        single_thread_numba()
        aqlm_cpu.install()  # the same bytes as aqlm's kernel, compiled once per machine


def single_thread_numba() -> None:
    """Run aqlm's CPU (numba) kernel on one thread — in the calling thread (numba's thread count is thread-local).

    aqlm 1.1.7's `numba_gemm_lut` accumulates into the same output element from a `numba.prange` loop over
    input groups: with more than one numba thread that is a data race and the layer's output is wrong
    (measured: held-out perplexity 55.9 instead of 52.5 on 2 cores; a served 2x8 model sampled broken code
    from a generation thread left at the default). One thread gives exact results.
    """
    import numba

    numba.set_num_threads(1)
