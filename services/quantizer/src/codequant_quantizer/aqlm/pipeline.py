"""AQLM over a whole model: the full-precision model stays in host memory and one block at a time goes to the
compute device; calibration activations live where the memory plan puts them (``codequant_quantizer.aqlm.planner``);
a killed run resumes after its last finished linear layer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codequant.errors import InputError
from codequant_quantizer.aqlm import blockwise_cache
from codequant_quantizer.aqlm.activations import Activations
from codequant_quantizer.aqlm.block import BLOCK_FINETUNE_EPOCHS, BLOCK_FINETUNE_LR, finetune_block, quantize_block
from codequant_quantizer.aqlm.checkpoint import Checkpoint
from codequant_quantizer.aqlm.export import save_aqlm
from codequant_quantizer.aqlm.layer import LayerSettings, QuantizedLayer
from codequant_quantizer.aqlm.meter import Meter
from codequant_quantizer.aqlm.modules import AqLinear, replace_module
from codequant_quantizer.aqlm.planner import Plan, plan_for_run
from codequant_quantizer.aqlm.stream import block_inputs, forward_all
from codequant_quantizer.aqlm.weight import AqlmShape
from codequant_quantizer.calibration import build_calibration
from codequant_quantizer.model_io import (
    decoder_layers,
    linear_groups,
    load_config,
    load_for_quantization,
    model_identity,
)
from codequant_quantizer.progress import LayerProgress
from codequant_quantizer.record import save_and_record

ACTIVATION_DTYPES = ("auto", "float32", "float16", "bfloat16")


def activation_dtype_for(name: str, save_dtype: torch.dtype) -> torch.dtype:
    """``auto``: the model's own dtype when it is 16-bit, else float32 (so float32 models keep float32
    activations, as before)."""
    if name not in ACTIVATION_DTYPES:
        raise InputError(f"activation dtype must be one of {', '.join(ACTIVATION_DTYPES)}, got {name!r}")
    if name == "auto":
        return save_dtype if save_dtype in (torch.float16, torch.bfloat16) else torch.float32
    return getattr(torch, name)


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
    activation_dtype: str = "auto",
    offload: str = "auto",
    gpu_memory_gb: float | None = None,
) -> dict[str, Any]:
    """Quantize ``model`` with the AQLM settings of ``variant`` into ``out_dir``; returns the run's record."""
    started = time.monotonic()
    shape = AqlmShape(
        variant["num_codebooks"], variant["nbits_per_codebook"], variant["in_group_size"], variant["out_group_size"]
    )
    config, save_dtype = load_config(model, dtype)
    act_dtype = activation_dtype_for(activation_dtype, save_dtype)
    compute = torch.device(device)
    run_plan = plan_for_run(
        config.to_dict(), variant, device=compute, activation_dtype=act_dtype, weight_dtype=save_dtype,
        offload=offload, gpu_memory_gb=gpu_memory_gb,
    )  # fmt: skip
    settings = LayerSettings(
        shape,
        beam_size=variant["beam_size"],
        max_epochs=variant["max_epochs"],
        relative_tolerance=variant["relative_tolerance"],
        seed=variant["seed"],
        workspace_bytes=run_plan.settings.workspace_bytes,
    )
    fp_model, tokenizer = _load_on_host(model, dtype, compute, save_dtype)
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
    identity = {"model": model_identity(model), "dtype": dtype, "activation_dtype": str(act_dtype)}
    reuse_key = blockwise_cache.blockwise_key(identity, variant, manifest["fingerprint"], device)
    reused = blockwise_cache.load(reuse_key, len(layers)) if variant.get("finetune") else None
    if reused is not None:  # the same blocks were quantized for a variant that differs only in fine-tuning
        records = []
        for block, saved_block in zip(layers, reused, strict=True):
            _restore_block(block.float(), saved_block["state"])
            records += [{**layer, "reused_blockwise": reuse_key} for layer in saved_block["layers"]]
    else:
        records = _quantize_blocks(
            fp_model, layers, input_ids, checkpoint, settings, run_plan, act_dtype, compute, progress
        )
        blockwise_cache.store(reuse_key, [checkpoint.folder / f"block_{i}.pt" for i in range(len(layers))])
    distillation = None
    finetune = variant.get("finetune")
    if finetune:
        distillation = _finetune_end_to_end(fp_model, model, dtype, input_ids, finetune, settings, run_plan, act_dtype)
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
        activations={"dtype": str(act_dtype).removeprefix("torch."), "place": run_plan.activations},
        plan=run_plan.to_dict(),
        blocks=checkpoint.block_records(),
        layers=records,
        end_to_end_finetune=distillation,
    )
    checkpoint.remove()
    return record


def _quantize_blocks(
    fp_model: nn.Module,
    layers: list[nn.Module],
    input_ids: torch.Tensor,
    checkpoint: Checkpoint,
    settings: LayerSettings,
    run_plan: Plan,
    act_dtype: torch.dtype,
    compute: torch.device,
    progress: bool,
) -> list[dict[str, Any]]:
    """Quantize and fine-tune every block in turn (resuming after the last saved one); returns the layers' records.
    Each finished block is saved in the checkpoint as ``block_<i>.pt``."""
    buffer_shape = (input_ids.shape[0], input_ids.shape[1], fp_model.config.hidden_size)

    def buffer(name: str) -> Activations:
        return Activations(
            buffer_shape, act_dtype, place=run_plan.activations, device=compute, file=checkpoint.folder / name
        )

    done = checkpoint.blocks_done()
    hidden = buffer(f"inputs_{done}.bin")
    if done == 0:
        arguments = block_inputs(fp_model, input_ids, hidden)
    else:
        arguments = block_inputs(fp_model, input_ids[:1], None, device=compute)
        saved = checkpoint.inputs_file()
        if run_plan.activations != "disk":  # a disk buffer maps the saved file itself
            hidden.load(saved)
    scratch = buffer("scratch.bin")
    records: list[dict[str, Any]] = []
    meter = Meter(compute)
    total_layers = sum(len(g) for block in layers for g in linear_groups(block))
    with LayerProgress(total_layers, enabled=progress) as bar:
        for index, block in enumerate(layers):
            if index < done:
                saved_block = checkpoint.load_block(index)
                _restore_block(block, saved_block["state"])
                records += saved_block["layers"]
                bar.advance(len(saved_block["layers"]), f"block {index} (resumed)")
                continue
            meter.start()
            block.to(compute, torch.float32)
            with torch.no_grad():
                forward_all(block, hidden, arguments, scratch)  # the full-precision block's outputs: targets
            groups = linear_groups(block)
            block_layers: list[dict[str, Any]] = []
            for tensors, record in checkpoint.layers_done(index):
                name = record["name"]
                linear = block.get_submodule(name)
                moved = {k: v.to(compute) for k, v in tensors.items()}
                replace_module(block, name, AqLinear(moved["codes"], moved["codebooks"], moved["scales"], linear.bias))
                block_layers.append({**record, "resumed": True})
                bar.advance(1, f"block {index} {name} (resumed)")

            def on_layer(
                record: dict[str, Any], result: QuantizedLayer, _index=index, _bar=bar, _layers=block_layers
            ) -> None:
                tensors = {"codes": result.codes, "codebooks": result.codebooks, "scales": result.scales}
                checkpoint.save_layer(_index, record["name"], tensors, record)
                _layers.append(record)
                _bar.advance(1, f"block {_index} {record['name']} err {record['relative_error']:.4f}")

            quantize_block(block, index, groups, hidden, arguments, settings, on_layer)
            history = finetune_block(
                block,
                hidden,
                scratch,
                arguments,
                epochs=BLOCK_FINETUNE_EPOCHS,
                lr=BLOCK_FINETUNE_LR,
                seed=settings.seed + index,
            )
            for record in block_layers:
                record["block_finetune_relative_mse"] = history
            with torch.no_grad():
                forward_all(block, hidden, arguments, scratch)  # the quantized block's outputs: next inputs
            block.to("cpu")
            timing = {"block": index, **meter.read()}
            checkpoint.finish_block(index, block, block_layers, timing, scratch)
            bar.advance(0, f"block {index} done in {timing['seconds']:.1f}s, peak {_gb(timing['peak_memory_bytes'])}")
            records += block_layers
            if run_plan.activations == "disk":
                hidden.release()
                hidden, scratch = scratch, buffer("scratch.bin")
            else:
                hidden, scratch = scratch, hidden
    hidden.release()
    scratch.release()
    hidden.release()
    scratch.release()
    return records


def _load_on_host(model: str, dtype: str, compute: torch.device, save_dtype: torch.dtype) -> tuple[nn.Module, Any]:
    """The full-precision model in host memory: float32 for CPU runs; a 16-bit checkpoint stays 16-bit for GPU
    runs (each block is made float32 on the GPU while it is quantized)."""
    if compute.type == "cpu" or save_dtype not in (torch.float16, torch.bfloat16):
        loaded, tokenizer, _ = load_for_quantization(model, dtype, "cpu")
        return loaded, tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(model, dtype=save_dtype)
    loaded.eval()
    loaded.config.use_cache = False
    return loaded, AutoTokenizer.from_pretrained(model)


def _finetune_end_to_end(
    student: nn.Module,
    model: str,
    dtype: str,
    input_ids: torch.Tensor,
    finetune: dict[str, Any],
    settings: LayerSettings,
    run_plan: Plan,
    act_dtype: torch.dtype,
) -> dict[str, Any]:
    """Knowledge distillation from the full-precision model. On the CPU: both models in float32, AqLinear's
    plain autograd. On a GPU: the quantized layers run through the aqlm kernels (``aqlm/kernels.py``) in the
    activations' 16-bit dtype (bfloat16 for float32 models, the kernels having no float32 version) under autocast,
    the teacher in its checkpoint's dtype, kept in host memory and streamed by accelerate when the plan says the
    GPU cannot hold it, and gradient checkpointing when the plan says one batch's activations do not fit."""
    from codequant_quantizer.aqlm.distill import distill

    compute = torch.device(run_plan.settings.device)
    params = {
        "epochs": finetune["epochs"],
        "lr": finetune["lr"],
        "batch_size": finetune["batch_size"],
        "patience": finetune["early_stopping_patience"],
        "seed": settings.seed,
    }
    meter = Meter(compute)
    meter.start()
    if compute.type == "cpu":
        teacher, _, _ = load_for_quantization(model, dtype, "cpu")
        history = distill(student, teacher, input_ids, **params)
        return {**history, **meter.read()}
    from codequant_quantizer.aqlm.kernels import kernel_linears

    kernel_dtype = act_dtype if act_dtype != torch.float32 else torch.bfloat16
    teacher = _teacher_on(model, compute, run_plan.teacher_offload)
    with kernel_linears(student, settings.shape.nbits_per_codebook, kernel_dtype) as swapped:
        student.to(compute, torch.float32)
        if run_plan.gradient_checkpointing:
            student.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            student.train()  # transformers checkpoints only in training mode (Llama has no dropout)
        try:
            history = distill(student, teacher, input_ids, **params, autocast=kernel_dtype)
        finally:
            if run_plan.gradient_checkpointing:
                student.gradient_checkpointing_disable()
                student.eval()
    student.to("cpu")
    del teacher
    return {
        **history,
        **meter.read(),
        "kernel_layers": swapped,
        "kernel_dtype": str(kernel_dtype).removeprefix("torch."),
        "teacher_offload": run_plan.teacher_offload,
        "gradient_checkpointing": run_plan.gradient_checkpointing,
    }


def _teacher_on(model: str, compute: torch.device, offload: bool) -> nn.Module:
    """The full-precision model in its checkpoint's dtype, on ``compute``, or in host memory with accelerate moving
    each module to ``compute`` when it runs."""
    from transformers import AutoModelForCausalLM

    teacher = AutoModelForCausalLM.from_pretrained(model, dtype="auto")
    teacher.eval()
    teacher.config.use_cache = False
    teacher.requires_grad_(False)
    if offload:
        from accelerate import cpu_offload

        return cpu_offload(teacher, execution_device=compute)
    return teacher.to(compute)


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


def _gb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e9:.2f} GB"
