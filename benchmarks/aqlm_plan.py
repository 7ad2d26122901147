"""AQLM at real scale, planned: GPU, host and disk peaks and time for CodeLlama 7B/13B/34B at the reference
study's settings (from the configs in tests/quantizer/fixtures/, nothing downloaded), and — measured here — the
code/codebook alternations a layer takes at the default tolerance, which the time plan assumes.

    .venv/bin/python benchmarks/aqlm_plan.py [--epochs-only | --plan-only]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codequant_quantizer.aqlm.planner import DEVICES, GB, Settings, load_model_config, model_shape, plan

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "quantizer" / "fixtures"
SHAPES = {"1x16 g8": (1, 16), "1x15 g8 (paper's 2-bit preset)": (1, 15), "2x8 g8": (2, 8)}
GPUS = {"h100": 80, "a100": 80, "h200": 141}


def planned() -> None:
    print("| model | codebooks | GPU | activations | GPU peak | host peak | disk | per block | quantization | "
          "end-to-end fine-tuning | total |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in ("7b", "13b", "34b"):
        shape = model_shape(load_model_config(str(FIXTURES / f"codellama-{size}.json")))
        for label, (m, b) in SHAPES.items():
            for gpu, memory in GPUS.items():
                settings = Settings(
                    nsamples=1024, seqlen=4096, num_codebooks=m, nbits_per_codebook=b, in_group_size=8,
                    device="cuda", activation_bytes=2, weight_bytes=2, teacher_bytes=2, finetune=True,
                    gpu_memory=memory * GB,
                )  # fmt: skip
                p = plan(shape, settings, DEVICES[gpu])
                s = p.seconds
                extra = (" + checkpointing" if p.gradient_checkpointing else "") + (
                    " + teacher in host memory" if p.teacher_offload else ""
                )
                print(
                    f"| CodeLlama-{size.upper()} | {label} | {DEVICES[gpu].name} | {p.activations}{extra} | "
                    f"{p.device_peak.total / GB:.1f} GB ({p.device_peak.name}) | {p.host_peak.total / GB:.1f} GB | "
                    f"{p.disk_peak / GB:.0f} GB | {s['per_block'] / 60:.0f} min | {s['quantization'] / 3600:.1f} h | "
                    f"{s['end_to_end_finetune'] / 3600:.1f} h | {s['total'] / 3600:.1f} h |"
                )


def epochs() -> None:
    """quantize_layer at its defaults (beam 8, up to 100 alternations, 1 % tolerance) on the first block of the
    quantizer tests' small code model, calibrated on 64 x 256 tokens of standard-library code."""
    from codequant import settings
    from codequant_quantizer.api import build_calibration, linear_groups, load_for_quantization
    from codequant_quantizer.aqlm import (
        Activations,
        AqlmShape,
        LayerSettings,
        accumulate_xtx,
        block_inputs,
        quantize_layer,
    )
    from tests.quantizer.small_model import build_small_model

    folder = build_small_model(settings.cache_dir() / "models" / "small-code-test")
    model, tokenizer, _ = load_for_quantization(str(folder))
    ids, _ = build_calibration(tokenizer, "code", nsamples=64, seqlen=256, seed=0)
    hidden = Activations((64, 256, model.config.hidden_size), torch.float32, place="device", device=torch.device("cpu"))
    arguments = block_inputs(model, ids, hidden)
    block = model.model.layers[0]
    xtx = {}
    for group in linear_groups(block):
        xtx |= accumulate_xtx(block, group, hidden, arguments)
    layers = dict(block.named_modules())
    for m in (1, 2):
        counts, seconds = [], []
        for name, matrix in xtx.items():
            start = time.monotonic()
            result = quantize_layer(layers[name].weight.detach(), matrix, LayerSettings(AqlmShape(m, 8, 8, 1)))
            counts.append(result.epochs)
            seconds.append(time.monotonic() - start)
        print(
            f"{m}x8 g8: alternations per layer {counts} (mean {statistics.mean(counts):.1f}); "
            f"seconds per layer mean {statistics.mean(seconds):.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs-only", action="store_true")
    parser.add_argument("--plan-only", action="store_true")
    args = parser.parse_args()
    if not args.epochs_only:
        planned()
    if not args.plan_only:
        epochs()


if __name__ == "__main__":
    main()
