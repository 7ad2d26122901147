"""GPTQ, AWQ and packed round-to-nearest through llm-compressor, saved as compressed-tensors checkpoints.

llm-compressor is the maintained implementation of these algorithms (vLLM's own); codequant only feeds it the
study's calibration set, asks for the study's scheme, and writes the same folder layout, quantization.json
and footprint as for AQLM. transformers loads the folder (on CPU it decompresses the weights to run them);
vLLM serves it packed on GPUs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from codequant.errors import InputError, ServiceError
from codequant_quantizer.calibration import build_calibration
from codequant_quantizer.methods.base import QuantizeJob, Quantizer, register_quantizer
from codequant_quantizer.model_io import load_for_quantization, weight_errors
from codequant_quantizer.record import save_and_record

#: Layers kept in full precision, as in llm-compressor's examples and the published GPTQ/AWQ checkpoints.
IGNORE = ["lm_head"]


def scheme_config(variant: dict[str, Any]) -> dict[str, Any]:
    """compressed-tensors config_groups for the variant (group-wise int weights, or W8A8 per channel/token)."""
    scheme = variant.get("scheme")  # rtn has none: its bits are given
    group: dict[str, Any] = {"targets": ["Linear"]}
    if scheme == "W8A8":
        group["weights"] = {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel"}
        group["input_activations"] = {
            "num_bits": 8,
            "type": "int",
            "symmetric": True,
            "strategy": "token",
            "dynamic": True,
        }
    else:
        group["weights"] = {
            "num_bits": variant["bits"] if scheme is None else (4 if scheme == "W4A16" else 8),
            "type": "int",
            "symmetric": variant["symmetric"],
            "strategy": "group",
            "group_size": variant["group_size"],
        }
    return {"group_0": group}


def _recipe(variant: dict[str, Any]) -> list[Any]:
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier

    groups = scheme_config(variant)
    if variant["method"] == "gptq":
        return [GPTQModifier(config_groups=groups, ignore=IGNORE, dampening_frac=variant["dampening_frac"])]
    quantization = QuantizationModifier(config_groups=groups, ignore=IGNORE)
    if variant["method"] == "awq":
        from llmcompressor.modifiers.transform.awq import AWQModifier

        _allow_awq_without_accelerator()
        # AWQ searches per-channel scales that protect salient weights, folds them into the preceding layers,
        # then the weights are rounded as configured.
        return [AWQModifier(n_grid=variant["awq_grid"]), quantization]
    return [quantization]


@torch.no_grad()
def fake_quantized_weight(module: torch.nn.Module) -> torch.Tensor:
    """The weight a compressed-tensors layer computes with: rounded with its own scales and zero points
    (GPTQ has already written these values; RTN quantizes when the folder is saved)."""
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize

    scheme = getattr(module, "quantization_scheme", None)
    if scheme is None or scheme.weights is None:
        return module.weight
    return fake_quantize(module.weight, module.weight_scale, getattr(module, "weight_zero_point", None), scheme.weights)


def _allow_awq_without_accelerator() -> None:
    """llm-compressor 0.14's AWQ pins cached activations in page-locked memory, which raises "Cannot access
    accelerator device" on a machine without one. Pinning only speeds host-to-device copies, so on such a
    machine it is skipped (the computation is unchanged)."""
    if torch.accelerator.is_available():
        return
    from llmcompressor.pipelines.cache import IntermediatesCache

    IntermediatesCache.pin_memory = lambda self, batch_index, input_names=None: None


def _check_divisible(model: Any, group_size: int) -> None:
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name not in IGNORE and module.in_features % group_size:
            raise InputError(
                f"group_size: {name} has {module.in_features} input columns, not a multiple of {group_size}"
            )


def quantize_compressor(
    model: str,
    variant: dict[str, Any],
    out_dir: Path,
    *,
    dtype: str,
    device: str,
    calibration_dir: Path | None,
    fingerprint: str,
) -> dict[str, Any]:
    """Quantize with llm-compressor's one-shot pipeline (gptq, awq, or rtn with backend llm-compressor)."""
    try:
        from datasets import Dataset
        from llmcompressor import oneshot
    except ImportError:
        raise ServiceError(
            f"method {variant['method']} needs llm-compressor: pip install 'codequant-quantizer[compressors]'"
        ) from None
    started = time.monotonic()
    loaded, tokenizer, save_dtype = load_for_quantization(model, dtype, device)
    method = variant["method"]
    if variant.get("scheme") != "W8A8":  # group-wise schemes (and rtn)
        _check_divisible(loaded, variant["group_size"])
    calibration = None
    dataset = None
    cal = variant.get("calibration")
    if cal is not None:
        input_ids, calibration = build_calibration(
            tokenizer,
            cal["set"],
            nsamples=cal["nsamples"],
            seqlen=cal["seqlen"],
            seed=cal["seed"],
            calibration_dir=calibration_dir,
        )
        rows = input_ids.tolist()
        dataset = Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]})
    oneshot(
        model=loaded,
        dataset=dataset,
        recipe=_recipe(variant),
        max_seq_length=cal["seqlen"] if cal else 512,
        num_calibration_samples=cal["nsamples"] if cal else 1,
        processor=tokenizer,
    )
    # AWQ rescales weights (folding the scales into the previous norm), so its error against the original
    # weights is not a quantization error; GPTQ and RTN leave fake-quantized weights to compare.
    errors = weight_errors(model, loaded, fake_quantized_weight) if method != "awq" else []
    quantized_parameters = sum(
        m.weight.numel() for n, m in loaded.named_modules() if isinstance(m, torch.nn.Linear) and n not in IGNORE
    )
    return save_and_record(
        out_dir,
        loaded,
        tokenizer,
        save=lambda folder: loaded.to(save_dtype).save_pretrained(folder, save_compressed=True),
        model=model,
        config=variant,
        fingerprint=fingerprint,
        device=device,
        save_dtype=save_dtype,
        started=started,
        format="compressed-tensors",
        scheme=scheme_config(variant),
        calibration=calibration,
        layers=errors,
        quantized_parameters=quantized_parameters,
    )


@register_quantizer
class CompressorQuantizer(Quantizer):
    """GPTQ and AWQ through llm-compressor's one-shot pipeline."""

    methods = ("gptq", "awq")

    def quantize(self, job: QuantizeJob) -> dict[str, Any]:
        return quantize_compressor(
            job.model,
            job.config,
            job.out_dir,
            dtype=job.dtype,
            device=job.device,
            calibration_dir=job.calibration_dir,
            fingerprint=job.fingerprint,
        )
