"""Quantizer cost and quality on CPU: time per layer and in total, bits per weight, held-out perplexity,
AQLM (code calibration) next to round-to-nearest, on the small code model the quantizer tests train.

    .venv/bin/python benchmarks/quantizer_layers.py [--work DIR] [--nsamples 48] [--seqlen 256] [--library-methods]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codequant_quantizer.api import footprint, quantize
from codequant_serving.api import load_model
from tests.quantizer.small_model import TRAIN_MODULES, build_small_model, held_out_perplexity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.mkdtemp(prefix="cq-qbench-")))
    parser.add_argument("--nsamples", type=int, default=48)
    parser.add_argument("--seqlen", type=int, default=256)
    parser.add_argument("--library-methods", action="store_true", help="also RTN (packed), GPTQ, AWQ, bitsandbytes")
    args = parser.parse_args()
    model = build_small_model(args.work / "small-model")
    corpus = args.work / "corpus"
    (corpus / "code").mkdir(parents=True, exist_ok=True)
    for path in TRAIN_MODULES:
        (corpus / "code" / path.name).write_text(path.read_text(encoding="utf-8", errors="replace"))
    calibration = {"set": "code", "nsamples": args.nsamples, "seqlen": args.seqlen}
    variants = {f"rtn {b}-bit g128": {"method": "rtn", "bits": b, "group_size": 128} for b in (2, 3, 4)}
    variants |= {
        f"aqlm {m}x8 g8": {
            "method": "aqlm",
            "num_codebooks": m,
            "nbits_per_codebook": 8,
            "in_group_size": 8,
            "beam_size": 4,
            "calibration": calibration,
        }
        for m in (1, 2, 3)
    }
    if args.library_methods:  # llm-compressor and bitsandbytes (the `compressors` extra)
        packed = {"method": "rtn", "group_size": 128, "symmetric": True, "backend": "llm-compressor"}
        variants |= {f"rtn-lc {b}-bit g128": {**packed, "bits": b} for b in (4, 8)}
        variants |= {
            f"{m} {s} g128": {"method": m, "scheme": s, "group_size": 128, "calibration": calibration}
            for m in ("gptq", "awq")
            for s in ("W4A16", "W8A16")
        }
        variants |= {"bnb int8": {"method": "bnb-int8"}, "bnb nf4": {"method": "bnb-nf4"}}
    fp_model, tokenizer = load_model(str(model))
    print(
        f"model: {model} ({sum(p.numel() for p in fp_model.parameters()):,} parameters); "
        f"fp32 held-out perplexity {held_out_perplexity(fp_model, tokenizer):.2f}"
    )
    print(
        f"{'variant':<16} {'total s':>8} {'s/layer mean':>13} {'s/layer max':>12} {'nominal bits':>13} "
        f"{'stored bits':>12} {'perplexity':>11}"
    )
    for name, variant in variants.items():
        out = args.work / name.replace(" ", "-")
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        quantize(str(model), variant, out, calibration_dir=corpus, progress=False)
        total = time.perf_counter() - start
        record = json.loads((out / "quantization.json").read_text())
        layer_seconds = [layer["seconds"] for layer in record["layers"] if "seconds" in layer]
        size = footprint(out)
        quantized, tok = load_model(str(out))
        mean = f"{statistics.mean(layer_seconds):.2f}" if layer_seconds else "–"
        peak = f"{max(layer_seconds):.2f}" if layer_seconds else "–"
        nominal = size["nominal_bits_per_param"]
        print(
            f"{name:<16} {total:>8.1f} {mean:>13} {peak:>12} {f'{nominal:.3f}' if nominal else '–':>13} "
            f"{size['stored_bits_per_param']:>12.3f} {held_out_perplexity(quantized, tok):>11.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
