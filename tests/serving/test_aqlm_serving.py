"""An AQLM folder served on CPU decodes exactly what transformers decodes in-process (aqlm's numba kernel
races with more than one numba thread, and numba's thread count is per thread: the server's generation
thread must set it too)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import torch

from codequant.benchmarks import load_benchmark
from codequant.launch import running_server
from codequant_quantizer.api import quantize
from codequant_serving.loading import load_model

pytestmark = pytest.mark.slow
AQLM = {
    "method": "aqlm",
    "num_codebooks": 2,
    "nbits_per_codebook": 8,
    "in_group_size": 8,
    "beam_size": 2,
    "max_epochs": 3,
    "calibration": {"set": "random", "nsamples": 8, "seqlen": 64},
}


def test_served_greedy_text_equals_in_process_generation(tiny_model: Path, tmp_path: Path) -> None:
    folder = quantize(str(tiny_model), AQLM, tmp_path / "aqlm", progress=False)
    prompts = [p.prompt for p in load_benchmark("humaneval", limit=3).problems]
    model, tokenizer = load_model(str(folder))
    expected = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt")
            out = model.generate(**ids, max_new_tokens=48, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            expected.append(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
    with running_server(str(folder)) as url:
        for prompt, text in zip(prompts, expected, strict=True):
            for _ in range(2):
                response = httpx.post(
                    f"{url}/generate",
                    json={"inputs": prompt, "parameters": {"max_new_tokens": 48, "do_sample": False}},
                    timeout=120,
                )
                assert response.status_code == 200
                assert response.json()["generated_text"] == text
