"""AQLM over a whole model, block by block, resumable after a crash at block granularity."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codequant_quantizer.aqlm.block import finetune_block, quantize_block
from codequant_quantizer.aqlm.export import save_aqlm
from codequant_quantizer.aqlm.layer import LayerSettings
from codequant_quantizer.aqlm.modules import AqLinear, replace_module
from codequant_quantizer.aqlm.weight import AqlmShape
from codequant_quantizer.calibration import build_calibration
from codequant_quantizer.model_io import block_inputs, decoder_layers, linear_groups, load_for_quantization, run_block
from codequant_quantizer.progress import LayerProgress
from codequant_quantizer.record import save_and_record

BLOCK_FINETUNE_EPOCHS = 5
BLOCK_FINETUNE_LR = 1e-4


def quantize_aqlm(
    model: str,
    variant: dict[str, Any],
    out_dir: Path,
    *,
    dtype: str,
    device: str,
    calibration_dir: Path | None,
    progress: bool,
    fingerprint: str,
) -> dict[str, Any]:
    """Quantize ``model`` with the AQLM settings of ``variant`` into ``out_dir``; returns the run's record."""
    started = time.monotonic()
    shape = AqlmShape(
        variant["num_codebooks"], variant["nbits_per_codebook"], variant["in_group_size"], variant["out_group_size"]
    )
    settings = LayerSettings(
        shape,
        beam_size=variant["beam_size"],
        max_epochs=variant["max_epochs"],
        relative_tolerance=variant["relative_tolerance"],
        seed=variant["seed"],
    )
    fp_model, tokenizer, save_dtype = load_for_quantization(model, dtype, device)
    cal = variant["calibration"]
    input_ids, manifest = build_calibration(
        tokenizer,
        cal["set"],
        nsamples=cal["nsamples"],
        seqlen=cal["seqlen"],
        seed=cal["seed"],
        calibration_dir=calibration_dir,
    )
    layers = decoder_layers(fp_model)
    checkpoint = Checkpoint(out_dir / ".partial", fingerprint)
    hidden, arguments = block_inputs(fp_model, input_ids)
    records: list[dict[str, Any]] = []
    done = checkpoint.blocks_done()
    total_layers = sum(len(g) for block in layers for g in linear_groups(block))
    with LayerProgress(total_layers, enabled=progress) as bar:
        for index, block in enumerate(layers):
            if index < done:
                saved = checkpoint.load_block(index)
                _restore_block(block, saved["state"])
                records += saved["layers"]
                bar.advance(len(saved["layers"]), f"block {index} (resumed)")
                continue
            if index == done and done > 0:
                hidden = checkpoint.load_hidden()
            with torch.no_grad():
                targets = run_block(block, hidden, arguments)
            block_records: list[dict[str, Any]] = []

            def on_layer(record: dict[str, Any], _bar=bar, _block=block_records) -> None:
                _block.append(record)
                _bar.advance(1, f"block {record['block']} {record['name']} err {record['relative_error']:.4f}")

            quantize_block(block, index, hidden, arguments, settings, on_layer)
            history = finetune_block(
                block,
                hidden,
                targets,
                arguments,
                epochs=BLOCK_FINETUNE_EPOCHS,
                lr=BLOCK_FINETUNE_LR,
                seed=settings.seed + index,
            )
            for record in block_records:
                record["block_finetune_relative_mse"] = history
            with torch.no_grad():
                hidden = run_block(block, hidden, arguments)
            checkpoint.save_block(index, block, block_records, hidden)
            records += block_records
    distillation = None
    finetune = variant.get("finetune")
    if finetune:
        teacher, _, _ = load_for_quantization(model, dtype, device)
        from codequant_quantizer.aqlm.distill import distill

        distillation = distill(
            fp_model,
            teacher,
            input_ids,
            epochs=finetune["epochs"],
            lr=finetune["lr"],
            batch_size=finetune["batch_size"],
            patience=finetune["early_stopping_patience"],
            seed=settings.seed,
        )
        del teacher
    record = save_and_record(
        out_dir,
        fp_model,
        tokenizer,
        save=lambda folder: save_aqlm(fp_model, tokenizer, shape, folder, save_dtype),
        model=model,
        config=variant,
        fingerprint=fingerprint,
        device=device,
        save_dtype=save_dtype,
        started=started,
        calibration=manifest,
        layers=records,
        end_to_end_finetune=distillation,
    )
    checkpoint.remove()
    return record


def _restore_block(block: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put the saved quantized layers (AqLinear) and fine-tuned parameters back into a full-precision block."""
    for name in [key.removesuffix(".codes") for key in state if key.endswith(".codes")]:
        replace_module(
            block,
            name,
            AqLinear(
                state[f"{name}.codes"], state[f"{name}.codebooks"], state[f"{name}.scales"], state.get(f"{name}.bias")
            ),
        )
    block.load_state_dict(state)


class Checkpoint:
    """Per-block state in ``out_dir/.partial``: a crashed run resumes after its last finished block."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        progress = folder / "progress.json"
        if progress.exists() and json.loads(progress.read_text()).get("fingerprint") != fingerprint:
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint

    def blocks_done(self) -> int:
        progress = self.folder / "progress.json"
        return json.loads(progress.read_text())["blocks_done"] if progress.exists() else 0

    def load_block(self, index: int) -> dict[str, Any]:
        return torch.load(self.folder / f"block_{index}.pt", weights_only=False)

    def load_hidden(self) -> torch.Tensor:
        return torch.load(self.folder / "hidden.pt", weights_only=False)

    def save_block(self, index: int, block: nn.Module, layers: list[dict[str, Any]], hidden: torch.Tensor) -> None:
        _atomic_save(
            {"state": {k: v.detach().clone() for k, v in block.state_dict().items()}, "layers": layers},
            self.folder / f"block_{index}.pt",
        )
        _atomic_save(hidden, self.folder / "hidden.pt")
        tmp = self.folder / "progress.json.tmp"
        tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "blocks_done": index + 1}))
        tmp.replace(self.folder / "progress.json")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
