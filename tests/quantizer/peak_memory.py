"""Measure an AQLM run's peak memory on the CPU and plan it: run as a script in a fresh process.

    python -m tests.quantizer.peak_memory MODEL WORK NSAMPLES SEQLEN [MAX_EPOCHS] [BEAM]

Prints JSON: the peak resident memory the run added next to the plan's host peak. Measured with Linux's
VmHWM: the pipeline resets it at each block's start and records each block's peak in quantization.json; the
largest of those and of the peak after the last block, minus the resident memory just before the run, is what the
run added. A warm-up run on a few sequences first loads every library and fills every cache, and glibc is told to
return large blocks to the system at once (MALLOC_MMAP_THRESHOLD_, set by the caller), so the difference is the
run's own tensors.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch

from codequant_quantizer.api import normalise_variant, quantize
from codequant_quantizer.aqlm.meter import peak_rss
from codequant_quantizer.model_io import load_config
from codequant_quantizer.plan import plan_for_run


def _rss() -> int:
    return int(re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE).group(1)) * 1024


def main() -> None:
    model, work = sys.argv[1], Path(sys.argv[2])
    nsamples, seqlen = int(sys.argv[3]), int(sys.argv[4])
    max_epochs = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    beam = int(sys.argv[6]) if len(sys.argv) > 6 else 2
    variant = {
        "method": "aqlm",
        "num_codebooks": 1,
        "nbits_per_codebook": 8,
        "in_group_size": 8,
        "beam_size": beam,
        "max_epochs": max_epochs,
        "calibration": {"set": "code", "nsamples": nsamples, "seqlen": seqlen},
    }
    warm = {**variant, "max_epochs": 1, "calibration": {**variant["calibration"], "nsamples": 8}}
    quantize(model, warm, work / "warm-up", progress=False)
    base = _rss()
    record = quantize(model, variant, work / "run", progress=False)
    result = json.loads((record / "quantization.json").read_text())
    peak = max([peak_rss(), *(block["peak_memory_bytes"] for block in result["blocks"])])
    config, saved = load_config(model)
    plan = plan_for_run(
        config.to_dict(), normalise_variant(variant), device="cpu", activation_dtype=torch.float32, weight_dtype=saved
    )
    print(
        json.dumps(
            {
                "measured_bytes": peak - base,
                "planned_bytes": plan.host_peak.total,
                "planned_stage": plan.host_peak.name,
                "planned_parts": plan.host_peak.parts,
                "blocks": result["blocks"],
                "epochs": [layer["epochs"] for layer in result["layers"]],
                "layer_seconds": [layer["seconds"] for layer in result["layers"]],
                "seconds": result["seconds"],
            }
        )
    )


if __name__ == "__main__":
    main()
