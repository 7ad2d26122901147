"""Device check: AQLM's real job end to end on one GPU — build a Llama model, quantize it with AQLM 2x8 (with
end-to-end fine-tuning) and 1x16 on CUDA, serve the result, sample n=20 completions — printing time per stage,
peak GPU memory, tokens/s and how far the GPU's codes and kernels agree with the CPU's. Nothing comes from the
internet: the model (hidden 1024, 8 blocks, grouped-query attention) and its BPE tokenizer are built here from the
Python standard library's sources, trained briefly, and the same sources are the calibration corpus.

    bash benchmarks/device_check.sh                  # one H100/H200-class GPU, under 8 minutes
    bash benchmarks/device_check.sh --cpu --small    # the CPU fallback at CI size (what the tests run)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import torch

CLI = [sys.executable, "-c", "from codequant.cli import main; main()"]
STDLIB = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
PROMPTS = [
    "def fibonacci(n):\n",
    "def is_palindrome(text: str) -> bool:\n",
    "class Stack:\n    def __init__(self):\n",
]

#: Model and run sizes: the GPU check, and the CPU fallback at CI size (``--small``).
SIZES = {
    "gpu": {
        "hidden": 1024, "intermediate": 2816, "layers": 8, "heads": 16, "kv_heads": 8, "vocab": 4096,
        "files": 120, "train_steps": 150, "train_batch": (16, 256), "nsamples": 64, "seqlen": 512,
        "max_tokens": 64, "beam": 4, "epochs": 2,
        "second": {"num_codebooks": 1, "nbits_per_codebook": 16},
    },
    "small": {
        "hidden": 64, "intermediate": 128, "layers": 2, "heads": 4, "kv_heads": 2, "vocab": 512,
        "files": 30, "train_steps": 10, "train_batch": (8, 128), "nsamples": 8, "seqlen": 64,
        "max_tokens": 8, "beam": 2, "epochs": 1,
        # 1x16 needs 65536 weight groups per layer; the 64-wide model's key projection has 256: 1x8 stands in.
        "second": {"num_codebooks": 1, "nbits_per_codebook": 8},
    },
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (the fallback where no GPU is lent)")
    parser.add_argument("--small", action="store_true", help="CI-sized model and calibration")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a new temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args()
    device = "cpu" if args.cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("device_check: no CUDA device here; run with --cpu for the CPU fallback")
    size = SIZES["small" if args.small else "gpu"]
    work = args.work or Path(tempfile.mkdtemp(prefix="cq-device-check-"))
    work.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    summary: dict[str, Any] = {"device": _device_name(device), "sizes": size, "stages_seconds": stages}

    started = time.monotonic()
    corpus = _corpus(work / "corpus.jsonl")
    model = _build_model(work / "model", size, device)
    stages["build and train model"] = time.monotonic() - started

    base = {"in_group_size": 8, "calibration": {"set": str(corpus), "nsamples": size["nsamples"],
                                                 "seqlen": size["seqlen"]}}  # fmt: skip
    runs = {
        "aqlm-2x8": {**base, "num_codebooks": 2, "nbits_per_codebook": 8, "beam_size": size["beam"],
                     "max_epochs": size["epochs"], "finetune": {"epochs": 1, "lr": 1e-5}},
        f"aqlm-{size['second']['num_codebooks']}x{size['second']['nbits_per_codebook']}": {
            **base, **size["second"], "beam_size": 2, "max_epochs": 1},
    }  # fmt: skip
    # 16-bit activations on both devices: the GPU's model is bfloat16 (auto), the CPU's float32 (asked for).
    activations = {"aqlm-2x8": "auto"} | {name: "bfloat16" for name in list(runs)[1:]}
    summary["quantized"] = {}
    for name, variant in runs.items():
        started = time.monotonic()
        record = _quantize(model, work / name, variant, device, activations[name])
        stages[f"quantize {name}" + (" + end-to-end fine-tuning" if "finetune" in variant else "")] = (
            time.monotonic() - started
        )
        summary["quantized"][name] = _record_summary(record)

    started = time.monotonic()
    summary["agreement"] = _agreement(model, work, runs["aqlm-2x8"], device)
    stages["CPU-vs-device agreement"] = time.monotonic() - started

    started = time.monotonic()
    summary["serving"] = _serve_and_sample(work / "aqlm-2x8", device, size["max_tokens"])
    stages["serve and sample n=20"] = time.monotonic() - started
    summary["total_seconds"] = sum(stages.values())
    _print(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


def _device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores; no GPU: the CPU fallback)"


def _corpus(path: Path) -> Path:
    """Python standard-library modules as a local calibration corpus (code documents)."""
    with path.open("w") as handle:
        for file in sorted(STDLIB.glob("*.py"))[:200]:
            text = file.read_text(encoding="utf-8", errors="replace")
            handle.write(json.dumps({"text": text, "kind": "code", "language": "python", "source": file.name}) + "\n")
    return path


def _build_model(folder: Path, size: dict[str, Any], device: str) -> Path:
    """A Llama model of the given shape with a byte-level BPE tokenizer trained on the standard library, trained
    for a few steps on the same text (so its activations look like a language model's), saved in bfloat16 for the
    GPU (exercising the 16-bit host copy and activations) and float32 on the CPU."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(STDLIB.glob("*.py"))[: size["files"]]]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size["vocab"],
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    ids = torch.tensor([t for text in texts for t in tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size["hidden"],
        intermediate_size=size["intermediate"],
        num_hidden_layers=size["layers"],
        num_attention_heads=size["heads"],
        num_key_value_heads=size["kv_heads"],
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        pad_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    rows, length = size["train_batch"]
    for step in range(size["train_steps"]):
        starts = torch.randint(0, len(ids) - length - 1, (rows,), generator=generator)
        batch = torch.stack([ids[s : s + length] for s in starts]).to(device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * (step + 1) / size["train_steps"]))
    model = model.to("cpu", torch.bfloat16 if device == "cuda" else torch.float32)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _quantize(model: Path, out: Path, variant: dict[str, Any], device: str, activations: str) -> dict[str, Any]:
    """The quantizer's API in its own process (so its peak GPU memory is its own)."""
    code = (
        "import json, sys; from codequant_quantizer.api import quantize; "
        "quantize(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], device=sys.argv[4], "
        "activation_dtype=sys.argv[5], progress=False)"
    )
    variant = {"method": "aqlm", **variant}
    args = [str(model), json.dumps(variant), str(out), device, activations]
    subprocess.run([sys.executable, "-c", code, *args], check=True)
    return json.loads((out / "quantization.json").read_text())


def _record_summary(record: dict[str, Any]) -> dict[str, Any]:
    blocks = record.get("blocks") or []
    peaks = [b["peak_memory_bytes"] for b in blocks if b.get("peak_memory_bytes")]
    e2e = record.get("end_to_end_finetune") or {}
    return {
        "seconds": record["seconds"],
        "seconds_per_block": [b["seconds"] for b in blocks],
        "peak_memory_gb": max(peaks) / 1e9 if peaks else None,
        "memory_measure": blocks[0]["memory_measure"] if blocks else None,
        "finetune_peak_memory_gb": (e2e.get("peak_memory_bytes") or 0) / 1e9 or None,
        "finetune_seconds": e2e.get("seconds"),
        "finetune_valid_kl": e2e.get("valid_kl"),
        "mean_relative_error": sum(x["relative_error"] for x in record["layers"]) / len(record["layers"]),
        "planned_device_peak_gb": (record["plan"].get("device_peak_bytes") or 0) / 1e9 or None,
        "planned_host_peak_gb": record["plan"]["host_peak_bytes"] / 1e9,
        "activations": record["activations"],
    }


def _agreement(model: Path, work: Path, variant: dict[str, Any], device: str) -> dict[str, Any]:
    """The same layers quantized on the CPU and on the device from the same weights and XᵀX (first block's
    q_proj and down_proj, calibration inputs in float32): the share of identical codes and both relative errors;
    and one quantized layer's output through the device's aqlm kernel (16-bit) against the CPU's float32
    reference."""
    from transformers import AutoModelForCausalLM

    from codequant_quantizer.api import deterministic_torch
    from codequant_quantizer.aqlm import (
        Activations,
        AqLinear,
        AqlmShape,
        KernelAqLinear,
        LayerSettings,
        accumulate_xtx,
        block_inputs,
        quantize_layer,
    )

    deterministic_torch(warn_only=False)
    if device == "cpu":  # aqlm's numba kernel races on several threads (docs/quantizer.md)
        import numba

        numba.set_num_threads(1)
    fp = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    ids = torch.tensor([list(range(1, 129))] * 4) % fp.config.vocab_size
    hidden = Activations((4, 128, fp.config.hidden_size), torch.float32, place="device", device=torch.device("cpu"))
    arguments = block_inputs(fp, ids, hidden)
    block = fp.model.layers[0]
    names = ["self_attn.q_proj", "mlp.down_proj"]
    layers = {n: block.get_submodule(n) for n in names}
    xtx = accumulate_xtx(block, [(n, layers[n]) for n in names[:1]], hidden, arguments)
    xtx |= accumulate_xtx(block, [(n, layers[n]) for n in names[1:]], hidden, arguments)
    shape = AqlmShape(variant["num_codebooks"], variant["nbits_per_codebook"], variant["in_group_size"], 1)
    settings = LayerSettings(shape, beam_size=variant["beam_size"], max_epochs=variant["max_epochs"], seed=7)
    result: dict[str, Any] = {"layers": {}}
    for name in names:
        weight = layers[name].weight.detach()
        on_cpu = quantize_layer(weight, xtx[name], settings)
        on_device = quantize_layer(weight.to(device), xtx[name].to(device), settings)
        same = float((on_cpu.codes == on_device.codes.cpu()).float().mean())
        result["layers"][name] = {
            "identical_codes": same,
            "relative_error_cpu": on_cpu.relative_error,
            "relative_error_device": on_device.relative_error,
        }
        if name == names[0]:
            reference = AqLinear(on_cpu.codes, on_cpu.codebooks, on_cpu.scales, None)
            dtype = torch.bfloat16 if device == "cuda" else torch.float32
            kernel = KernelAqLinear(reference, shape.nbits_per_codebook, dtype).to(device)
            x = hidden.read(slice(0, 2))
            with torch.no_grad():
                want = reference(x)
                got = kernel(x.to(device)).float().cpu()
            result["kernel_relative_difference"] = float((got - want).norm() / want.norm())
            result["kernel"] = kernel.kernels()[0].__name__
    result["identical_codes"] = min(v["identical_codes"] for v in result["layers"].values())
    return result


def _serve_and_sample(folder: Path, device: str, max_tokens: int) -> dict[str, Any]:
    """`codequant serve` on the quantized folder; n=20 completions of each prompt through the OpenAI API."""
    port = _free_port()
    dtype = "float32" if device == "cpu" else "auto"  # aqlm's CPU kernel wants float32
    command = ["serve", "--model", str(folder), "--port", str(port), "--device", device, "--dtype", dtype]
    server = subprocess.Popen(
        [*CLI, *command, "--model-id", "check"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        started = time.monotonic()
        while not _healthy(port):
            if server.poll() is not None:
                raise RuntimeError(f"codequant serve exited: {server.stderr.read().decode()[-2000:]}")
            if time.monotonic() - started > 600:
                raise RuntimeError("codequant serve did not become healthy in 10 minutes")
            time.sleep(0.5)
        load_seconds = time.monotonic() - started
        started = time.monotonic()
        completion_tokens, texts = 0, []
        for prompt in PROMPTS:
            body = {"model": "check", "prompt": prompt, "n": 20, "max_tokens": max_tokens, "temperature": 0.2,
                    "top_p": 0.95, "seed": 0}  # fmt: skip
            answer = _post(port, "/v1/completions", body)
            completion_tokens += answer["usage"]["completion_tokens"]
            texts += [choice["text"] for choice in answer["choices"]]
        seconds = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {
        "load_seconds": load_seconds,
        "sampling_seconds": seconds,
        "completions": len(texts),
        "completion_tokens": completion_tokens,
        "tokens_per_second": completion_tokens / seconds,
        "example": texts[0][:200],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _post(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def _print(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("stage", "seconds", title=f"device check on {summary['device']}")
    for stage, seconds in summary["stages_seconds"].items():
        table.add_row(stage, f"{seconds:.1f}")
    table.add_row("total", f"{summary['total_seconds']:.1f}")
    console = Console(highlight=False)
    console.print(table)
    for name, q in summary["quantized"].items():
        peak = "n/a" if q["peak_memory_gb"] is None else f"{q['peak_memory_gb']:.2f} GB"
        console.print(
            f"{name}: {q['seconds']:.1f} s, per block {', '.join(f'{s:.1f}' for s in q['seconds_per_block'])} s, "
            f"peak {peak} ({q['memory_measure']}), mean layer error {q['mean_relative_error']:.4f}, activations "
            f"{q['activations']['dtype']} on {q['activations']['place']}",
            markup=False,
        )
        if q["finetune_seconds"] is not None:
            ft_peak = q["finetune_peak_memory_gb"]
            console.print(
                f"  end-to-end fine-tuning: {q['finetune_seconds']:.1f} s, peak "
                f"{'n/a' if ft_peak is None else f'{ft_peak:.2f} GB'}, held-out KL {q['finetune_valid_kl']}",
                markup=False,
            )
    agreement = summary["agreement"]
    console.print(
        f"CPU vs device: identical codes {100 * agreement['identical_codes']:.1f} % (worst layer); "
        + "; ".join(
            f"{n}: errors {v['relative_error_cpu']:.5f} (CPU) / {v['relative_error_device']:.5f} (device)"
            for n, v in agreement["layers"].items()
        )
        + f"; kernel {agreement['kernel']} vs CPU float32: relative difference "
        + f"{agreement['kernel_relative_difference']:.2e}",
        markup=False,
    )
    serving = summary["serving"]
    console.print(
        f"serving: loaded in {serving['load_seconds']:.1f} s; {serving['completions']} completions, "
        f"{serving['completion_tokens']} tokens in {serving['sampling_seconds']:.1f} s = "
        f"{serving['tokens_per_second']:.1f} tokens/s",
        markup=False,
    )


if __name__ == "__main__":
    main()
