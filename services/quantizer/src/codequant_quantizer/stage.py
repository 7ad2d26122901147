"""``prepare_variant``: the quantize stage, called by the Celery task and by the embedded runner alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from codequant.environment import describe
from codequant.model_source import resolve_model
from codequant.payloads import PrepareRequest, PrepareResult
from codequant.study.methods import method_packages
from codequant_quantizer.api import footprint, quantize, variant_model

#: What the quantize stage's results depend on beside the methods' own libraries (``method_packages``), recorded
#: with its job.
PACKAGES = ("codequant-quantizer", "codequant-tiny-model", "torch", "transformers", "accelerate")


def prepare_variant(request: PrepareRequest, *, detail: Callable[[str], None] | None = None) -> PrepareResult:
    """Resolve the model source, quantize it when the method asks for it, and measure the folder to serve.

    Idempotent: a finished folder returns at once, an interrupted one resumes. A baseline is not quantized;
    its artifact is the model itself. ``detail`` receives what is happening, for progress displays.
    """
    say = detail or (lambda _text: None)
    base = resolve_model(
        request.model,
        progress=(lambda done, total: say(f"training the tiny model, step {done}/{total}")) if detail else False,
    )
    spec = variant_model(request.variant)
    if spec.quantized:
        say(f"quantizing ({spec.method})")
        path = str(
            quantize(
                base,
                spec,
                Path(request.out_dir),
                dtype=request.model_dtype,
                device=request.device,
                progress=False,
            )
        )
    else:
        path = base
    size = footprint(Path(path)) if Path(path).is_dir() else None
    return PrepareResult(
        artifact_path=path, footprint=size, environment=describe(PACKAGES + method_packages("quantize"))
    )
