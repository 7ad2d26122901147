"""Plans for this machine: a quantization run's (``aqlm/pipeline.py``) and `codequant quantize --plan`'s, with the
memory found here and the time assumed on the GPU found here."""

from __future__ import annotations

from typing import Any

import psutil
import torch
from rich.console import Console

from codequant.errors import InputError
from codequant_quantizer.aqlm.planner.peaks import Plan, plan
from codequant_quantizer.aqlm.planner.settings import DEVICES, GB, Throughput, settings_for
from codequant_quantizer.aqlm.planner.shapes import load_model_config, model_shape
from codequant_quantizer.aqlm.planner.table import plan_table


def detected_memory(device: str, gpu_memory_gb: float | None) -> tuple[int | None, int]:
    """(GPU memory in bytes: ``gpu_memory_gb`` if given, else the first CUDA device's when one exists; host
    memory in bytes)."""
    gpu = None
    if gpu_memory_gb is not None:
        gpu = int(gpu_memory_gb * GB)
    elif device == "cuda" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_properties(0).total_memory
    return gpu, psutil.virtual_memory().total


def detected_throughput(device: str) -> Throughput:
    """The time plan's device: the CUDA device's when it is one of DEVICES, else an H100 (assumed)."""
    if device == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0).lower()
        for key, spec in DEVICES.items():
            if key in name:
                return spec
    return DEVICES["h100"]


def plan_for_run(
    config: dict[str, Any],
    variant: dict[str, Any],
    *,
    device: Any,
    activation_dtype: Any,
    weight_dtype: Any,
    offload: str = "auto",
    gpu_memory_gb: float | None = None,
) -> Plan:
    """The plan a quantization run follows (``aqlm/pipeline.py``), with the memory found on this machine."""
    kind = torch.device(device).type
    gpu, host = detected_memory(kind, gpu_memory_gb)
    settings = settings_for(
        variant,
        device=kind,
        activation_bytes=torch.empty(0, dtype=activation_dtype).element_size(),
        weight_bytes=torch.empty(0, dtype=weight_dtype).element_size(),
        offload=offload,
        gpu_memory=gpu,
        host_memory=host,
    )
    return plan(model_shape(config), settings, detected_throughput(kind) if kind == "cuda" else None)


def print_plan(
    model: str,
    config: dict[str, Any],
    *,
    device: str,
    dtype: str = "auto",
    activation_dtype: str = "auto",
    offload: str = "auto",
    gpu_memory_gb: float | None = None,
) -> Plan:
    """Plan a run of the method config ``config`` (presets expanded, defaults filled: ``VariantModel.method_config``)
    from the model's config (a config.json, a folder, or a hub id) and print it. Planning a GPU run on a machine
    without one assumes an 80 GB GPU unless ``gpu_memory_gb`` says otherwise, and does not limit host memory (it is
    the GPU host's, not this machine's)."""
    if config["method"] != "aqlm":
        raise InputError("--plan plans AQLM runs (--method aqlm)")
    model_config = load_model_config(model)
    weight = _weight_bytes(model_config, dtype)
    if activation_dtype not in ("auto", "float32", "float16", "bfloat16"):
        raise InputError(f"activation dtype must be auto, float32, float16 or bfloat16, got {activation_dtype!r}")
    act = (weight if weight == 2 else 4) if activation_dtype == "auto" else (4 if activation_dtype == "float32" else 2)
    kind = torch.device(device).type
    gpu, host = detected_memory(kind, gpu_memory_gb)
    notes = []
    if kind == "cuda" and not torch.cuda.is_available():
        host = None
        if gpu is None:
            gpu = 80 * GB
            notes.append("no GPU here: planned for an 80 GB GPU (--gpu-memory-gb to change)")
        notes.append("host memory not checked (no GPU here: it is the GPU host's)")
    settings = settings_for(
        config, device=kind, activation_bytes=act, weight_bytes=weight, offload=offload, gpu_memory=gpu,
        host_memory=host,
    )  # fmt: skip
    result = plan(model_shape(model_config), settings, detected_throughput(kind) if kind == "cuda" else None)
    result.notes[:0] = notes
    Console(highlight=False).print(plan_table(result))
    return result


def _weight_bytes(config: dict[str, Any], dtype: str) -> int:
    name = dtype if dtype != "auto" else (config.get("dtype") or config.get("torch_dtype") or "float32")
    sizes = {"float32": 4, "float16": 2, "bfloat16": 2, "fp32": 4, "fp16": 2, "bf16": 2}
    if name not in sizes:
        raise InputError(f"dtype: must be auto, float32, float16 or bfloat16, got {name!r}")
    return sizes[name]
