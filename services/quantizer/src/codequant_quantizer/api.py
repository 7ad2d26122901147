"""``quantize`` and ``footprint``: one entry point per job, dispatching on the study's method string through the
method registries (``codequant.study.methods`` for what a method is, ``codequant_quantizer.methods`` for how).

The quantizer's public entry points (``__all__``) are these, and what tools and benchmarks build on beside them:
calibration windows, a model loaded as the quantizer loads it, a block's linear layers in quantization order,
deterministic torch."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from codequant.errors import InputError
from codequant.keys import stable_hash
from codequant.study.methods import VariantModel, parse_variant, quantized_methods
from codequant_quantizer import footprint as _footprint
from codequant_quantizer.calibration import build_calibration
from codequant_quantizer.determinism import deterministic_torch
from codequant_quantizer.methods import QuantizeJob, quantizer_for
from codequant_quantizer.model_io import linear_groups, load_for_quantization, model_identity
from codequant_quantizer.record import RECORD, read_record

__all__ = [
    "build_calibration",
    "deterministic_torch",
    "footprint",
    "linear_groups",
    "load_for_quantization",
    "model_identity",
    "quantization_fingerprint",
    "quantize",
    "variant_model",
]

#: Folder inside the output marking an unfinished run (AQLM keeps its per-block checkpoints there).
PARTIAL = ".partial"


def variant_model(variant: dict[str, Any] | VariantModel) -> VariantModel:
    """Validate a variant's method config with the study schema (presets expanded, defaults filled)."""
    if isinstance(variant, VariantModel):
        return variant
    try:
        return parse_variant({"name": "cli", **variant})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "variant"
        raise InputError(f"{field}: {first['msg'].removeprefix('Value error, ')}") from None


def quantization_fingerprint(model: str, config: dict[str, Any], dtype: str, activation_dtype: str = "auto") -> str:
    """What a quantized folder was made from (input weights, method config, dtypes): a finished folder with the same
    fingerprint is reused, and an unfinished run resumes only its own checkpoints."""
    identity = {"model": model_identity(model), "variant": config, "dtype": dtype}
    if activation_dtype != "auto":  # changes the numbers; where the activations live does not
        identity["activation_dtype"] = activation_dtype
    return stable_hash(identity)[:24]


def quantize(
    model: str,
    variant: dict[str, Any] | VariantModel,
    out_dir: Path,
    *,
    dtype: str = "auto",
    device: str = "cpu",
    calibration_dir: Path | None = None,
    progress: bool = True,
    activation_dtype: str = "auto",
    offload: str = "auto",
    gpu_memory_gb: float | None = None,
) -> Path:
    """Quantize ``model`` as ``variant`` says into ``out_dir`` (resumable; a finished folder returns at once).

    AQLM only: ``activation_dtype`` (auto | float32 | float16 | bfloat16) of the calibration activations kept
    between blocks, ``offload`` (auto | none | cpu | disk) where they live, ``gpu_memory_gb`` the GPU memory the
    plan may count on (default: the device's); see ``codequant_quantizer.aqlm.planner``."""
    spec = variant_model(variant)
    config = spec.method_config()
    method = config["method"]
    if not spec.quantized:
        raise InputError(
            f"method {method!r} is not a quantization (available: {', '.join(sorted(quantized_methods()))})"
        )
    try:
        quantizer = quantizer_for(method)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None
    out_dir = Path(out_dir)
    fingerprint = quantization_fingerprint(model, config, dtype, activation_dtype)
    # Same seed, same codes: scatter-adds in backward passes (AQLM's codebook gradients) must not race. The
    # library methods only warn where a CUDA kernel has no deterministic version.
    deterministic_torch(warn_only=not quantizer.strict_determinism)
    with _locked(out_dir):
        done = read_record(out_dir)
        if done is not None and done.get("fingerprint") == fingerprint:
            return out_dir
        partial = out_dir / PARTIAL
        _prepare(out_dir, done is not None or partial.is_dir())
        partial.mkdir(exist_ok=True)  # marks the folder as ours until quantization.json is written
        job = QuantizeJob(
            model,
            spec,
            out_dir,
            dtype,
            device,
            calibration_dir,
            progress,
            fingerprint,
            activation_dtype=activation_dtype,
            offload=offload,
            gpu_memory_gb=gpu_memory_gb,
        )
        quantizer.quantize(job)
        shutil.rmtree(partial, ignore_errors=True)
    return out_dir


def _prepare(out_dir: Path, previous_run: bool) -> None:
    """An output folder must be empty, or hold an earlier codequant quantization or an unfinished run (replaced,
    except AQLM's checkpoints in .partial)."""
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
        return
    entries = {p.name for p in out_dir.iterdir()} - {".lock", PARTIAL}
    if previous_run:
        for entry in entries:
            target = out_dir / entry
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    elif entries:
        raise InputError(f"{out_dir}: not empty and not a codequant quantization folder (no {RECORD})")


@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """One quantization per folder at a time (two workers given the same job wait for each other)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def footprint(
    model_dir: Path | None = None,
    *,
    config: Path | dict[str, Any] | None = None,
    variant: dict[str, Any] | VariantModel | None = None,
    dtype: str = "float16",
) -> dict[str, Any]:
    """Measured footprint of a saved folder, or predicted from a model config for ``variant`` (default: the
    unquantized model) with unquantized tensors stored in ``dtype``."""
    if model_dir is not None:
        return _footprint.from_folder(Path(model_dir))
    if config is None:
        raise InputError("footprint needs a model folder or a config")
    spec = variant_model(variant or {"method": "baseline"})
    return spec.predict_footprint(_footprint.shapes_from_config(config, dtype))
