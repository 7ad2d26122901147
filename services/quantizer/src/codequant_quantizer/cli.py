"""Subcommands the quantizer adds to `codequant`: quantize, footprint.

Their method options are derived from the variant models (``codequant.variant_options``): each field of each
method is one option, validated by the same model a study file is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from codequant.errors import InputError
from codequant.footprint import SAFETENSORS_DTYPE
from codequant.option_checks import above, device, model_path
from codequant.study.methods import methods, quantized_methods
from codequant.variant_options import variant_from_options, with_variant_options

console = Console(highlight=False, soft_wrap=True, stderr=True)
#: ``footprint --method``: the unquantized baseline may be named by the dtype it is stored in (the paper's word).
BASELINE_DTYPES = ("fp16", "bf16", "fp32")
TorchDtype = Literal["auto", "float16", "bfloat16", "float32"]


def quantize(
    model: Annotated[
        str,
        typer.Option(
            help="model folder or Hugging Face hub id (with --plan: or a config.json)", callback=model_path(files=True)
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="output folder (a Hugging Face model folder)", file_okay=False)
    ] = None,
    method: Annotated[Literal[tuple(m for m in methods() if m in quantized_methods())], typer.Option()] = "aqlm",
    calibration_dir: Annotated[
        Path | None, typer.Option(help="local corpus for the calibration recipes", exists=True)
    ] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N", callback=device)] = "cpu",
    dtype: Annotated[TorchDtype, typer.Option(help="dtype of unquantized tensors")] = "auto",
    activation_dtype: Annotated[
        TorchDtype, typer.Option(help="AQLM: calibration activations (auto: the model's)")
    ] = "auto",
    offload: Annotated[
        Literal["auto", "none", "cpu", "disk"],
        typer.Option(help="AQLM: activations on the GPU (none), in host memory (cpu) or on disk; auto: what fits"),
    ] = "auto",
    gpu_memory_gb: Annotated[
        float | None,
        typer.Option(help="AQLM: GPU memory to plan for (default: the GPU's, when there is one)", callback=above(0)),
    ] = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="AQLM: print the run's planned GPU, host and disk use and time; run nothing")
    ] = False,
    variant_options: dict[str, Any] | None = None,
) -> None:
    """Quantize a model (resumable after a crash; a finished folder is reused). Each method option names the
    methods it applies to; omitted ones take the defaults a study file has."""
    variant = variant_from_options(method, variant_options or {})
    if plan:
        from codequant_quantizer.api import variant_model
        from codequant_quantizer.aqlm.planner import print_plan

        config = variant_model(variant).method_config()
        print_plan(model, config, device=device, dtype=dtype, activation_dtype=activation_dtype, offload=offload,
                   gpu_memory_gb=gpu_memory_gb)  # fmt: skip
        return
    if out is None:
        raise InputError("--out is required (except with --plan)")
    from codequant_quantizer.api import footprint as measure
    from codequant_quantizer.api import quantize as run

    folder = run(
        model, variant, out, dtype=dtype, device=device, calibration_dir=calibration_dir,
        activation_dtype=activation_dtype, offload=offload, gpu_memory_gb=gpu_memory_gb,
    )  # fmt: skip
    size = measure(folder)
    console.print(
        f"{folder}: {size['gb']:.4g} GB, {size['stored_bits_per_param'] or 0:.3g} bits per quantized weight",
        markup=False,
    )


def footprint(
    model: Annotated[Path | None, typer.Option(help="a saved model folder", exists=True, file_okay=False)] = None,
    config: Annotated[
        Path | None, typer.Option(help="a model config.json (predict without weights)", exists=True, dir_okay=False)
    ] = None,
    method: Annotated[
        Literal[(*methods(), *BASELINE_DTYPES)],
        typer.Option(help="with --config: the variant to predict (fp16, bf16, fp32: the baseline in that dtype)"),
    ] = "baseline",
    dtype: Annotated[
        Literal[tuple(SAFETENSORS_DTYPE)] | None,
        typer.Option(help="with --config: unquantized tensors in this dtype (default: fp16)", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    variant_options: dict[str, Any] | None = None,
) -> None:
    """Memory footprint of a saved folder, or predicted from a config for any method."""
    if (model is None) == (config is None):
        raise InputError("give exactly one of --model and --config")
    if method in BASELINE_DTYPES:
        if dtype is not None and SAFETENSORS_DTYPE[dtype] != SAFETENSORS_DTYPE[method]:
            raise InputError(f"--method {method} is the baseline in {method}, but --dtype says {dtype}")
        method, dtype = "baseline", method
    given = any(v is not None for v in (variant_options or {}).values())
    if model is not None and (method != "baseline" or given):
        raise InputError("--method and its options predict from --config; a --model folder is measured")
    variant = variant_from_options(method, variant_options or {})
    from codequant_quantizer.api import footprint as measure

    result = measure(model) if model is not None else measure(config=config, variant=variant, dtype=dtype or "fp16")
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    table = Table("quantity", "value")
    table.add_row("total", f"{result['total_bytes']:,} bytes ({result['gb']:.3f} GB)")
    for key in ("num_parameters", "nominal_bits_per_param", "stored_bits_per_param"):
        value = result[key]
        table.add_row(key, "–" if value is None else (f"{value:,}" if isinstance(value, int) else f"{value:.4f}"))
    for part, size in result["breakdown"].items():
        table.add_row(f"  {part}", f"{size:,} bytes")
    Console(highlight=False).print(table)


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(with_variant_options(quantize))
    app.command()(with_variant_options(footprint))
