"""What an unfinished AQLM run keeps in ``OUT/.partial`` so that a killed run loses at most one linear layer.

``progress.json`` (replaced atomically, written last) says how many blocks are finished, which linear layers of
the next block are, and which file holds that block's inputs. ``block_<i>.pt`` holds a finished block's state,
``layer_<i>_<name>.pt`` a finished layer's codes, codebooks and scales, ``inputs_<i>.bin`` the raw hidden
states entering block i (absent for block 0: they are recomputed from the embeddings).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codequant_quantizer.aqlm.activations import Activations

#: Layout version of ``.partial``: a folder left by another version starts over.
VERSION = 2


class Checkpoint:
    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        progress = self._progress()
        if progress and (progress.get("fingerprint") != fingerprint or progress.get("version") != VERSION):
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)

    def _progress(self) -> dict[str, Any]:
        path = self.folder / "progress.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_progress(self, **fields: Any) -> None:
        state = {**self._progress(), "fingerprint": self.fingerprint, "version": VERSION, **fields}
        tmp = self.folder / "progress.json.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(self.folder / "progress.json")

    def blocks_done(self) -> int:
        return self._progress().get("blocks_done", 0)

    def block_records(self) -> list[dict[str, Any]]:
        """Time and peak memory of each finished block."""
        return self._progress().get("blocks", [])

    # -- finished blocks ------------------------------------------------------------------------------------
    def load_block(self, index: int) -> dict[str, Any]:
        return torch.load(self.folder / f"block_{index}.pt", weights_only=False)

    def finish_block(
        self,
        index: int,
        block: nn.Module,
        layers: list[dict[str, Any]],
        timing: dict[str, Any],
        outputs: Activations,
    ) -> None:
        """Save block ``index`` and its outputs (the next block's inputs), then mark it finished and drop what the
        run no longer needs. ``outputs`` on disk is moved into place rather than copied."""
        state = {k: v.detach().to("cpu", copy=True) for k, v in block.state_dict().items()}
        _atomic_save({"state": state, "layers": layers}, self.folder / f"block_{index}.pt")
        inputs = self.folder / f"inputs_{index + 1}.bin"
        if outputs.place == "disk":
            outputs.rename(inputs)
        else:
            outputs.save(inputs)
        previous = self._progress().get("inputs")
        self._write_progress(
            blocks_done=index + 1, layers=[], inputs=inputs.name, blocks=[*self.block_records(), timing]
        )
        if previous and previous != inputs.name:
            (self.folder / previous).unlink(missing_ok=True)
        for path in self.folder.glob(f"layer_{index}_*.pt"):
            path.unlink()

    def inputs_file(self) -> Path | None:
        """The saved inputs of the first unfinished block (None for block 0)."""
        name = self._progress().get("inputs")
        return self.folder / name if name else None

    # -- finished layers of the current block ----------------------------------------------------------------
    def save_layer(self, block: int, name: str, tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> None:
        """Save a finished linear layer of block ``block`` (tensors on the CPU) and mark it finished."""
        payload = {"tensors": {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}, "record": record}
        _atomic_save(payload, self.folder / f"layer_{block}_{name}.pt")
        self._write_progress(layers=[*self._progress().get("layers", []), name])

    def layers_done(self, block: int) -> list[tuple[dict[str, torch.Tensor], dict[str, Any]]]:
        """(tensors, record) of the finished layers of block ``block`` in the order they were quantized."""
        if self.blocks_done() != block:
            return []
        saved = []
        for name in self._progress().get("layers", []):
            payload = torch.load(self.folder / f"layer_{block}_{name}.pt", weights_only=False)
            saved.append((payload["tensors"], payload["record"]))
        return saved

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
