"""Round-to-nearest integer weights with per-group scales: the dependency-free floor every method must beat.

The saved folder holds the de-quantized (fake-quantized) weights in the model's dtype, so any server loads
it; the footprint reports the size the packed integers and scales would take (see footprint.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codequant_quantizer.methods.base import QuantizeJob, Quantizer, register_quantizer
from codequant_quantizer.methods.compressor import CompressorQuantizer
from codequant_quantizer.model_io import decoder_layers, load_for_quantization
from codequant_quantizer.progress import LayerProgress
from codequant_quantizer.record import save_and_record


@torch.no_grad()
def rtn_weight(weight: torch.Tensor, bits: int, group_size: int, symmetric: bool) -> torch.Tensor:
    """The round-to-nearest reconstruction of ``weight`` [out, in] in groups of ``group_size`` input columns."""
    out, inp = weight.shape
    group = min(group_size, inp)
    if inp % group:
        raise ValueError(f"in_features {inp} is not a multiple of the group size {group}")
    w = weight.float().reshape(out, inp // group, group)
    if symmetric:
        top = 2 ** (bits - 1) - 1
        scale = w.abs().amax(-1, keepdim=True).clamp(min=1e-12) / top
        q = torch.clamp(torch.round(w / scale), -top - 1, top)
        restored = q * scale
    else:
        low, high = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
        scale = (high - low).clamp(min=1e-12) / (2**bits - 1)
        zero = torch.round(-low / scale)
        q = torch.clamp(torch.round(w / scale) + zero, 0, 2**bits - 1)
        restored = (q - zero) * scale
    return restored.reshape(out, inp).to(weight.dtype)


@torch.no_grad()
def quantize_rtn(
    model: str, variant: dict[str, Any], out_dir: Path, *, dtype: str, device: str, progress: bool, fingerprint: str
) -> dict[str, Any]:
    started = time.monotonic()
    loaded, tokenizer, save_dtype = load_for_quantization(model, dtype, device)
    linears = [
        (f"{i}.{name}", m)
        for i, block in enumerate(decoder_layers(loaded))
        for name, m in block.named_modules()
        if isinstance(m, nn.Linear)
    ]
    records = []
    with LayerProgress(len(linears), enabled=progress) as bar:
        for name, module in linears:
            before = module.weight.detach().clone()
            module.weight.copy_(rtn_weight(before, variant["bits"], variant["group_size"], variant["symmetric"]))
            error = float((module.weight - before).square().sum() / before.square().sum().clamp(min=1e-20))
            records.append({"name": name, "relative_weight_error": error})
            bar.advance(1, name)
    return save_and_record(
        out_dir,
        loaded,
        tokenizer,
        model=model,
        config=variant,
        fingerprint=fingerprint,
        device=device,
        save_dtype=save_dtype,
        started=started,
        layers=records,
        storage="de-quantized weights in the model's dtype; the footprint counts packed integers",
    )


@register_quantizer
class RtnQuantizer(Quantizer):
    """Round-to-nearest: here (de-quantized weights, any of 2-8 bits) or packed by llm-compressor (4 or 8 bits)."""

    methods = ("rtn",)

    def quantize(self, job: QuantizeJob) -> dict[str, Any]:
        if job.config["backend"] == "llm-compressor":
            return CompressorQuantizer().quantize(job)
        return quantize_rtn(
            job.model,
            job.config,
            job.out_dir,
            dtype=job.dtype,
            device=job.device,
            progress=job.progress,
            fingerprint=job.fingerprint,
        )
