"""bitsandbytes int8 and nf4: quantized by transformers while loading, then saved as a pre-quantized folder.

bitsandbytes is the maintained implementation (LLM.int8 with fp16 outlier columns; 4-bit NormalFloat in
blocks of 64 with absmax scales, optionally double-quantized). Saving the loaded model gives the same
folder layout, quantization.json and measured footprint as every other method; transformers, TGI and vLLM
load such folders directly. bitsandbytes >= 0.45 runs both formats on CPU as well as CUDA.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from codequant.errors import ServiceError
from codequant_quantizer.methods.base import QuantizeJob, Quantizer, register_quantizer
from codequant_quantizer.model_io import load_config, weight_errors
from codequant_quantizer.record import save_and_record


def bnb_config(variant: dict[str, Any], compute_dtype: torch.dtype) -> Any:
    """transformers' BitsAndBytesConfig for a bnb-int8 or bnb-nf4 variant."""
    from transformers import BitsAndBytesConfig

    if variant["method"] == "bnb-int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=variant["outlier_threshold"])
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=variant["double_quant"],
        bnb_4bit_compute_dtype=compute_dtype,
    )


def quantize_bnb(
    model: str, variant: dict[str, Any], out_dir: Path, *, dtype: str, device: str, fingerprint: str
) -> dict[str, Any]:
    """Load ``model`` through bitsandbytes as ``variant`` says and save the quantized folder."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ServiceError(
            f"method {variant['method']} needs bitsandbytes: pip install 'codequant-quantizer[compressors]'"
        ) from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    _, save_dtype = load_config(model, dtype)
    # Unquantized tensors keep the model's dtype; on CPU the 4-bit matmuls compute in float32.
    compute = torch.float32 if device == "cpu" else save_dtype
    loaded = AutoModelForCausalLM.from_pretrained(
        model, dtype=save_dtype, quantization_config=bnb_config(variant, compute), device_map=device
    )
    tokenizer = AutoTokenizer.from_pretrained(model)
    errors = weight_errors(model, loaded, dequantized_weight)
    quantized = [m for m in loaded.modules() if _is_bnb_linear(m)]
    return save_and_record(
        out_dir,
        loaded,
        tokenizer,
        save=lambda folder: loaded.save_pretrained(folder, safe_serialization=True),  # 4/8-bit tensors as they are
        model=model,
        config=variant,
        fingerprint=fingerprint,
        device=device,
        save_dtype=save_dtype,
        started=started,
        format="bitsandbytes",
        layers=errors,
        quantized_parameters=sum(m.in_features * m.out_features for m in quantized),
    )


def _is_bnb_linear(module: torch.nn.Module) -> bool:
    import bitsandbytes as bnb

    return isinstance(module, bnb.nn.Linear8bitLt | bnb.nn.Linear4bit)


@torch.no_grad()
def dequantized_weight(module: torch.nn.Module) -> torch.Tensor:
    """The float weight a bitsandbytes layer computes with (its own weight otherwise)."""
    import bitsandbytes as bnb

    if isinstance(module, bnb.nn.Linear4bit):
        return bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state).float()
    if isinstance(module, bnb.nn.Linear8bitLt):
        return module.weight.data.float() * module.weight.SCB.float().unsqueeze(1) / 127
    return module.weight.float()


@register_quantizer
class BitsAndBytesQuantizer(Quantizer):
    """bitsandbytes int8 and nf4, quantized by transformers while loading."""

    methods = ("bnb-int8", "bnb-nf4")

    def quantize(self, job: QuantizeJob) -> dict[str, Any]:
        return quantize_bnb(
            job.model, job.config, job.out_dir, dtype=job.dtype, device=job.device, fingerprint=job.fingerprint
        )
