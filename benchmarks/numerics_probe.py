"""What the CPU numerics give on the shipped tiny model, as digests: one line of JSON.

    .venv/bin/python benchmarks/numerics_probe.py

Run under the pinned numerics (``codequant.numerics``; ``CODEQUANT_NUMERICS=native`` leaves the libraries their own
choices), in a fresh process, since the libraries read their settings when they load. The digests: the logits of
one calibration window (every float bit), the AQLM codes and codebooks of the first block's ``q_proj`` (calibrated
on the shipped corpus), the greedy and the seeded sampled completions of three HumanEval prompts through the
serving engine, and aqlm's numba CPU kernel on the quantized layer. Two processes agree on a digest only if they
computed the same bytes. tests/quantizer/test_numerics.py runs it under emulated CPUs; docs/performance.md has the
settings that change what.
"""

from __future__ import annotations

import hashlib
import json
import time

from codequant import numerics

numerics.pin()  # before torch loads

import torch  # noqa: E402

from codequant.benchmarks import load_benchmark  # noqa: E402
from codequant_quantizer.api import build_calibration  # noqa: E402
from codequant_quantizer.aqlm import AqlmShape, LayerSettings, quantize_layer  # noqa: E402
from codequant_serving.api import Engine, Request, load_model, single_thread_numba  # noqa: E402
from codequant_tiny.api import shipped_fixture  # noqa: E402


def digest(*tensors: torch.Tensor | str) -> str:
    h = hashlib.sha256()
    for item in tensors:
        h.update(item.encode() if isinstance(item, str) else item.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def completions(engine: Engine, prompts: list[str], **sampling) -> list[str]:
    futures = [engine.submit(Request(prompt=p, max_new_tokens=48, **sampling)) for p in prompts]
    return [s.text for f in futures for s in f.result()]


def numba_kernel(codes: torch.Tensor, codebooks: torch.Tensor, scales: torch.Tensor, x: torch.Tensor) -> str:
    from aqlm.inference_kernels.numba_kernel import numba_gemm_lut

    single_thread_numba()  # as the server runs it (more numba threads race in this kernel)
    # aqlm's layout for its CPU kernel: codes [in groups, out groups, M] as int8.
    kernel_codes = codes.permute(1, 0, 2).contiguous().to(torch.uint8).view(torch.int8)
    return digest(numba_gemm_lut(x, kernel_codes, codebooks, scales, None))


def main() -> None:
    started = time.monotonic()
    model, tokenizer = load_model(str(shipped_fixture()))
    input_ids, _ = build_calibration(tokenizer, "code", nsamples=4, seqlen=128, seed=0, cache=False)
    captured: list[torch.Tensor] = []
    layer = model.model.layers[0].self_attn.q_proj
    handle = layer.register_forward_hook(lambda _m, args, _o: captured.append(args[0].detach()))
    with torch.no_grad():
        logits = model(input_ids).logits
    handle.remove()
    x = captured[0].reshape(-1, captured[0].shape[-1]).float()
    settings = LayerSettings(AqlmShape(2, 8, 8, 1), beam_size=4, max_epochs=2, seed=0)
    quantized = quantize_layer(layer.weight.detach(), x.T @ x / x.shape[0], settings)
    prompts = [p.prompt for p in load_benchmark("humaneval").problems[:3]]
    engine = Engine(model, tokenizer, max_batch_size=8)
    try:
        greedy = completions(engine, prompts, do_sample=False)
        sampled = completions(engine, prompts, n=2, temperature=0.2, top_p=0.95, seed=0)
    finally:
        engine.close()
    result = {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "logits": digest(logits),
        "codes": digest(quantized.codes, quantized.codebooks, quantized.scales),
        "greedy": digest(*greedy),
        "sampled": digest(*sampled),
        "numba": numba_kernel(quantized.codes, quantized.codebooks, quantized.scales, x[:8]),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
