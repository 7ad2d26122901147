"""The block-wise stage of AQLM (every block's codes, codebooks, scales and block fine-tuning) kept in the cache,
so that two variants that differ only in end-to-end fine-tuning quantize the blocks once.

Same model, settings, seed and calibration windows give the same blocks: every run keeps its blocks here, and a
run with ``finetune`` starts from the blocks of a run that differed from it only in fine-tuning (or not at all)
instead of recomputing them; its layers' records say ``reused_blockwise`` and it has no per-block timings. A run
without fine-tuning always quantizes (its per-block record is the measurement). The key holds everything the
blocks depend on; the end-to-end fine-tuning settings are left out. Only small models' blocks are kept
(``MAX_BYTES``): a large model's saved blocks would take as much disk as the model itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from codequant import numerics, settings
from codequant.keys import stable_hash

#: Version of what a cached entry holds; an entry of another version is never read.
VERSION = 1
#: Saved blocks larger than this (all together) are not kept.
MAX_BYTES = 256 << 20


def blockwise_key(identity: dict[str, Any], variant: dict[str, Any], calibration: str, device: str) -> str:
    """What the blocks depend on: input weights and dtypes (``identity``), the variant's settings but its
    end-to-end fine-tuning, the calibration windows' fingerprint, the device type and the numerics."""
    settings_only = {k: v for k, v in variant.items() if k != "finetune"}
    return stable_hash(
        {
            "version": VERSION,
            "identity": identity,
            "variant": settings_only,
            "calibration": calibration,
            "device": torch.device(device).type,
            "numerics": numerics.describe(),
        }
    )[:24]


def _folder(key: str) -> Path:
    return settings.cache_dir() / "aqlm-blockwise" / key


def load(key: str, blocks: int) -> list[dict[str, Any]] | None:
    """The saved blocks (``{"state", "layers"}`` each, as ``Checkpoint.finish_block`` wrote them) or None."""
    folder = _folder(key)
    paths = [folder / f"block_{index}.pt" for index in range(blocks)]
    if not (folder / "complete").exists() or not all(p.exists() for p in paths):
        return None
    return [torch.load(path, weights_only=False) for path in paths]


def store(key: str, block_files: list[Path]) -> None:
    """Copy a finished run's saved blocks into the cache (atomically: a folder renamed into place)."""
    if sum(p.stat().st_size for p in block_files) > MAX_BYTES or (_folder(key) / "complete").exists():
        return
    target = _folder(key)
    tmp = target.with_name(f"{key}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in block_files:
        shutil.copyfile(path, tmp / path.name)
    (tmp / "complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
