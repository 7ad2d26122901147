"""AQLM, implemented in ``codequant_quantizer.aqlm`` (no maintained library quantizes with it)."""

from __future__ import annotations

from typing import Any, ClassVar

from codequant_quantizer.methods.base import QuantizeJob, Quantizer, register_quantizer


@register_quantizer
class AqlmQuantizer(Quantizer):
    """Additive quantization, block by block, resumable layer by layer."""

    methods = ("aqlm",)
    strict_determinism: ClassVar[bool] = True

    def quantize(self, job: QuantizeJob) -> dict[str, Any]:
        from codequant_quantizer.aqlm.pipeline import quantize_aqlm

        return quantize_aqlm(
            job.model,
            job.config,
            job.out_dir,
            dtype=job.dtype,
            device=job.device,
            calibration_dir=job.calibration_dir,
            progress=job.progress,
            fingerprint=job.fingerprint,
            activation_dtype=job.activation_dtype,
            offload=job.offload,
            gpu_memory_gb=job.gpu_memory_gb,
        )
