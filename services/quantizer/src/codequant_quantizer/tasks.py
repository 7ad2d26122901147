"""Celery task of the `quantize` queue: produce (or find) a variant's weights in the artifacts folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codequant.celery_app import app
from codequant.model_source import resolve_model
from codequant.queues import TASK_NAMES
from codequant.study.methods import QUANTIZED_METHODS
from codequant_quantizer.api import footprint, quantize


@app.task(name=TASK_NAMES["quantize"], acks_late=True, reject_on_worker_lost=True)
def quantize_task(payload: dict[str, Any]) -> dict[str, Any]:
    """payload: model (source dict or path/hub id), model_dtype, variant (method config), out_dir, device.

    Idempotent: a finished folder returns at once, an interrupted one resumes. A baseline is not
    quantized; its artifact is the base model itself.
    """
    model = payload["model"]
    base = resolve_model(model) if isinstance(model, dict) else model
    variant = payload["variant"]
    if variant["method"] in QUANTIZED_METHODS:
        out = quantize(
            base,
            variant,
            Path(payload["out_dir"]),
            dtype=payload.get("model_dtype", "auto"),
            device=payload.get("device", "cpu"),
            progress=False,
        )
        return {"artifact_path": str(out), "footprint": footprint(out)}
    size = footprint(Path(base)) if Path(base).is_dir() else None
    return {"artifact_path": base, "footprint": size}
