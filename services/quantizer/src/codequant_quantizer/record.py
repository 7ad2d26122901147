"""quantization.json: what was done to a model, written last (its presence marks a finished folder)."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

RECORD = "quantization.json"


def versions() -> dict[str, str]:
    found = {}
    for package in ("codequant-quantizer", "torch", "transformers", "aqlm", "llmcompressor", "bitsandbytes"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_record(out_dir: Path, record: dict[str, Any]) -> None:
    tmp = out_dir / f"{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(out_dir / RECORD)


def read_record(out_dir: Path) -> dict[str, Any] | None:
    path = Path(out_dir) / RECORD
    return json.loads(path.read_text()) if path.exists() else None
