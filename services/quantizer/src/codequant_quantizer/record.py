"""quantization.json: what was done to a model, written last (its presence marks a finished folder)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from codequant.study.methods import method_packages

RECORD = "quantization.json"


def versions() -> dict[str, str]:
    """The installed versions of what quantized folders are made with (the methods declare their libraries)."""
    found = {}
    for package in ("codequant-quantizer", "torch", "transformers", *method_packages("quantize")):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_record(
    out_dir: Path,
    *,
    model: str,
    config: dict[str, Any],
    fingerprint: str,
    device: str,
    save_dtype: Any,
    started: float,
    **details: Any,
) -> dict[str, Any]:
    """Write (atomically) and return the record of a finished run: what every method records, then ``details``
    (calibration manifest, per-layer errors, format...). ``started`` is the run's ``time.monotonic()`` start."""
    record = {
        "method": config["method"],
        "model": model,
        "config": config,
        "fingerprint": fingerprint,
        **details,
        "device": device,
        "saved_dtype": str(save_dtype).removeprefix("torch."),
        "seconds": round(time.monotonic() - started, 2),
        "versions": versions(),
    }
    tmp = out_dir / f"{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(out_dir / RECORD)
    return record


def save_and_record(
    out_dir: Path,
    loaded: Any,
    tokenizer: Any,
    *,
    model: str,
    config: dict[str, Any],
    fingerprint: str,
    device: str,
    save_dtype: Any,
    started: float,
    save: Callable[[Path], None] | None = None,
    **details: Any,
) -> dict[str, Any]:
    """The last step of every method: the weights (``save(out_dir)``, by default the model's ``save_pretrained``
    in ``save_dtype``), the tokenizer, then quantization.json, whose presence marks the folder finished."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if save is None:
        loaded.to(save_dtype).save_pretrained(out_dir, safe_serialization=True)
    else:
        save(out_dir)
    tokenizer.save_pretrained(out_dir)
    return write_record(
        out_dir,
        model=model,
        config=config,
        fingerprint=fingerprint,
        device=device,
        save_dtype=save_dtype,
        started=started,
        **details,
    )


def read_record(out_dir: Path) -> dict[str, Any] | None:
    path = Path(out_dir) / RECORD
    return json.loads(path.read_text()) if path.exists() else None
