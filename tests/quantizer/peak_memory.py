"""Measure an AQLM run's peak memory on the CPU and plan it: run as a script in a fresh process.

    python -m tests.quantizer.peak_memory MODEL WORK CALIBRATION_SET NSAMPLES SEQLEN

Prints JSON: the peak resident memory the run added next to the plan's host peak. Measured with Linux's
VmHWM: the pipeline resets it at each block's start and records each block's peak in quantization.json; the
largest of those and of the peak after the last block, minus the resident memory just before the run, is what the
run added. Before that, a warm-up run on a few sequences loads every library, and the calibration windows are
drawn once (they are cached by content: drawing tokenizes whole documents into Python lists, whose heap stays
with the process — memory the plan does not model); glibc is told to return large blocks to the system at once
(MALLOC_MMAP_THRESHOLD_, set by the caller). So the difference is the pipeline's own tensors.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer

from codequant_quantizer.api import quantize, variant_model
from codequant_quantizer.aqlm.meter import peak_rss
from codequant_quantizer.aqlm.planner import plan_for_run
from codequant_quantizer.calibration import build_calibration
from codequant_quantizer.model_io import load_config


def _rss() -> int:
    return int(re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE).group(1)) * 1024


def main() -> None:
    model, work, calibration = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    nsamples, seqlen = int(sys.argv[4]), int(sys.argv[5])
    variant = {
        "method": "aqlm",
        "num_codebooks": 1,
        "nbits_per_codebook": 8,
        "in_group_size": 8,
        "beam_size": 2,
        "max_epochs": 1,
        "calibration": {"set": calibration, "nsamples": nsamples, "seqlen": seqlen},
    }
    warm = {**variant, "calibration": {**variant["calibration"], "nsamples": 8}}
    quantize(model, warm, work / "warm-up", progress=False)
    build_calibration(AutoTokenizer.from_pretrained(model), calibration, nsamples=nsamples, seqlen=seqlen, seed=0)
    base = _rss()
    record = quantize(model, variant, work / "run", progress=False)
    result = json.loads((record / "quantization.json").read_text())
    peak = max([peak_rss(), *(block["peak_memory_bytes"] for block in result["blocks"])])
    config, saved = load_config(model)
    plan = plan_for_run(
        config.to_dict(),
        variant_model(variant).method_config(),
        device="cpu",
        activation_dtype=torch.float32,
        weight_dtype=saved,
    )
    print(
        json.dumps(
            {
                "measured_bytes": peak - base,
                "planned_bytes": plan.host_peak.total,
                "planned_stage": plan.host_peak.name,
                "planned_parts": plan.host_peak.parts,
                "blocks": result["blocks"],
                "seconds": result["seconds"],
            }
        )
    )


if __name__ == "__main__":
    main()
