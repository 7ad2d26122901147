"""Subcommands the quantizer adds to `codequant`: quantize, footprint."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from codequant.errors import InputError

console = Console(highlight=False, soft_wrap=True, stderr=True)


def _method_params(
    method: str,
    preset: str | None,
    num_codebooks: int | None,
    nbits_per_codebook: int | None,
    in_group_size: int | None,
    out_group_size: int | None,
    bits: int | None,
    group_size: int,
    symmetric: bool | None,
    scheme: str = "W4A16",
    backend: str = "codequant",
) -> dict[str, Any]:
    if method == "aqlm":
        fields = {
            "preset": preset,
            "num_codebooks": num_codebooks,
            "nbits_per_codebook": nbits_per_codebook,
            "in_group_size": in_group_size,
            "out_group_size": out_group_size,
        }
        return {k: v for k, v in fields.items() if v is not None}
    if method == "rtn":
        if bits is None:
            raise InputError("--bits is required for --method rtn")
        return {"bits": bits, "group_size": group_size, "symmetric": bool(symmetric), "backend": backend}
    if method in ("gptq", "awq"):
        params: dict[str, Any] = {"scheme": scheme, "group_size": group_size}
        return params if symmetric is None else {**params, "symmetric": symmetric}
    return {}


def quantize(
    model: Annotated[str, typer.Option(help="model folder or Hugging Face hub id (with --plan: or a config.json)")],
    out: Annotated[Path | None, typer.Option("--out", help="output folder (a Hugging Face model folder)")] = None,
    method: Annotated[str, typer.Option(help="aqlm | rtn | gptq | awq | bnb-int8 | bnb-nf4")] = "aqlm",
    preset: Annotated[str | None, typer.Option(help="aqlm-8bit | aqlm-4bit | aqlm-3bit | aqlm-2bit")] = None,
    num_codebooks: Annotated[int | None, typer.Option(help="AQLM: M")] = None,
    nbits_per_codebook: Annotated[int | None, typer.Option(help="AQLM: B")] = None,
    in_group_size: Annotated[int | None, typer.Option(help="AQLM: g")] = None,
    out_group_size: Annotated[int | None, typer.Option(help="AQLM: output group size")] = None,
    bits: Annotated[int | None, typer.Option(help="RTN: bits per weight (2-8)")] = None,
    group_size: Annotated[int, typer.Option(help="RTN, GPTQ, AWQ: input columns per scale")] = 128,
    symmetric: Annotated[
        bool | None, typer.Option(help="RTN (default no), GPTQ, AWQ (default yes): symmetric integers")
    ] = None,
    backend: Annotated[str, typer.Option(help="RTN: codequant | llm-compressor (packed 4/8 bits)")] = "codequant",
    scheme: Annotated[str, typer.Option(help="GPTQ, AWQ: W4A16 | W8A16 | W8A8")] = "W4A16",
    double_quant: Annotated[bool, typer.Option(help="bnb-nf4: quantize the block scales too")] = False,
    calibration: Annotated[str, typer.Option(help="random | mixed | code | PATH")] = "random",
    calibration_dir: Annotated[Path | None, typer.Option(help="local corpus for the recipes")] = None,
    nsamples: Annotated[int, typer.Option(help="calibration sequences")] = 1024,
    seqlen: Annotated[int, typer.Option(help="tokens per calibration sequence")] = 4096,
    finetune: Annotated[bool, typer.Option(help="end-to-end knowledge-distillation fine-tuning")] = False,
    finetune_epochs: Annotated[int, typer.Option(help="fine-tuning epochs")] = 5,
    finetune_lr: Annotated[float, typer.Option(help="fine-tuning learning rate")] = 1e-5,
    beam_size: Annotated[int, typer.Option(help="AQLM beam search width")] = 8,
    max_epochs: Annotated[int, typer.Option(help="AQLM code/codebook alternations per layer")] = 100,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    dtype: Annotated[
        str, typer.Option(help="dtype of unquantized tensors: auto | float16 | bfloat16 | float32")
    ] = "auto",
    activation_dtype: Annotated[
        str, typer.Option(help="AQLM: calibration activations: auto (the model's) | float32 | float16 | bfloat16")
    ] = "auto",
    offload: Annotated[
        str, typer.Option(help="AQLM: activations on the GPU (none), in host memory (cpu) or on disk; auto: what fits")
    ] = "auto",
    gpu_memory_gb: Annotated[
        float | None, typer.Option(help="AQLM: GPU memory to plan for (default: the GPU's, when there is one)")
    ] = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="AQLM: print the run's planned GPU, host and disk use and time; run nothing")
    ] = False,
) -> None:
    """Quantize a model (resumable after a crash; a finished folder is reused)."""
    from codequant_quantizer.api import footprint as measure
    from codequant_quantizer.api import quantize as run

    variant: dict[str, Any] = {
        "method": method,
        **_method_params(
            method,
            preset,
            num_codebooks,
            nbits_per_codebook,
            in_group_size,
            out_group_size,
            bits,
            group_size,
            symmetric,
            scheme,
            backend,
        ),
    }
    calibration_spec = {"set": calibration, "nsamples": nsamples, "seqlen": seqlen, "seed": seed}
    if method in ("gptq", "awq"):
        variant["calibration"] = calibration_spec
    if method == "bnb-nf4":
        variant["double_quant"] = double_quant
    if method == "aqlm":
        variant.update(
            {
                "calibration": calibration_spec,
                "finetune": {"epochs": finetune_epochs, "lr": finetune_lr} if finetune else None,
                "beam_size": beam_size,
                "max_epochs": max_epochs,
                "seed": seed,
            }
        )
    if plan:
        from codequant_quantizer.plan import print_plan

        print_plan(model, variant, device=device, dtype=dtype, activation_dtype=activation_dtype, offload=offload,
                   gpu_memory_gb=gpu_memory_gb)  # fmt: skip
        return
    if out is None:
        raise InputError("--out is required (except with --plan)")
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
    model: Annotated[Path | None, typer.Option(help="a saved model folder")] = None,
    config: Annotated[Path | None, typer.Option(help="a model config.json (predict without weights)")] = None,
    method: Annotated[str, typer.Option(help="fp16 | bf16 | fp32 | aqlm | rtn (with --config)")] = "fp16",
    dtype: Annotated[str, typer.Option(help="unquantized tensors: fp16 | bf16 | fp32 (with --config)")] = "fp16",
    preset: Annotated[str | None, typer.Option(help="AQLM preset")] = None,
    num_codebooks: Annotated[int | None, typer.Option(help="AQLM: M")] = None,
    nbits_per_codebook: Annotated[int | None, typer.Option(help="AQLM: B")] = None,
    in_group_size: Annotated[int | None, typer.Option(help="AQLM: g")] = None,
    out_group_size: Annotated[int | None, typer.Option(help="AQLM: output group size")] = None,
    bits: Annotated[int | None, typer.Option(help="RTN: bits")] = None,
    group_size: Annotated[int, typer.Option(help="RTN: group size")] = 128,
    symmetric: Annotated[bool, typer.Option(help="RTN: symmetric")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Memory footprint of a saved folder, or predicted from a config for a quantization method."""
    from codequant_quantizer.api import footprint as measure
    from codequant_quantizer.api import normalise_variant

    if (model is None) == (config is None):
        raise InputError("give exactly one of --model and --config")
    if model is not None:
        result = measure(model)
    else:
        params: dict[str, Any] = {}
        if method in ("aqlm", "rtn"):
            params = normalise_variant(
                {
                    "method": method,
                    **_method_params(
                        method,
                        preset,
                        num_codebooks,
                        nbits_per_codebook,
                        in_group_size,
                        out_group_size,
                        bits,
                        group_size,
                        symmetric,
                    ),
                }
            )
            params.pop("method")
        result = measure(config=config, method=method, dtype=dtype, **params)
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
    app.command()(quantize)
    app.command()(footprint)
