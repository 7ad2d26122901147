"""Streaming as TGI and OpenAI users expect, driven by the real huggingface_hub and openai clients against a real
`codequant serve` on the tiny model: streamed text adds up to what the same seeded request returns unstreamed."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import openai
import pytest
from huggingface_hub import InferenceClient

from codequant.benchmarks import load_benchmark

PROBLEM = load_benchmark("humaneval").problems[0]  # trained by the test profile


@pytest.mark.parametrize("stop", [[], ["numbers"]])
def test_inference_client_stream_adds_up_to_the_unstreamed_text(server: str, stop: list[str]) -> None:
    client = InferenceClient(model=server)
    kwargs = {"max_new_tokens": 60, "do_sample": True, "temperature": 0.8, "seed": 3, "stop": stop, "details": True}
    whole = client.text_generation(PROBLEM.prompt, **kwargs)
    events = list(client.text_generation(PROBLEM.prompt, stream=True, **kwargs))
    assert len(events) > 5 and all(e.generated_text is None for e in events[:-1])
    last = events[-1]
    assert last.generated_text == whole.generated_text == "".join(e.token.text for e in events)
    assert last.details.finish_reason == whole.details.finish_reason
    assert last.details.generated_tokens == whole.details.generated_tokens
    assert last.details.seed == whole.details.seed and last.details.input_length > 20
    assert [e.index for e in events[:3]] == [1, 2, 3] and all(e.token.logprob <= 0 for e in events)
    if stop:
        assert whole.details.finish_reason == "stop_sequence" and last.generated_text.endswith("numbers")


def test_generate_stream_route_speaks_tgi_sse(server: str) -> None:
    body = {"inputs": PROBLEM.prompt, "parameters": {"max_new_tokens": 4, "details": True}}
    with httpx.stream("POST", f"{server}/generate_stream", json=body, timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    events = [json.loads(line.removeprefix("data:")) for line in lines]
    assert all(line.startswith("data:") for line in lines) and len(events) == 4
    assert events[-1]["details"]["finish_reason"] == "length" and events[-1]["details"]["generated_tokens"] == 4
    assert events[-1]["generated_text"] == "".join(e["token"]["text"] for e in events)
    assert all(e["generated_text"] is None and e["details"] is None for e in events[:-1])


def test_openai_stream_adds_up_to_the_unstreamed_choices(oai: openai.OpenAI, tiny_model: Path) -> None:
    request = {
        "model": str(tiny_model),
        "prompt": PROBLEM.prompt,
        "n": 3,
        "max_tokens": 80,
        "temperature": 1.0,
        "stop": ["\n    return", "result"],
        "seed": 11,
    }
    whole = oai.completions.create(**request)
    chunks = list(oai.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    texts, reasons = ["", "", ""], [None, None, None]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.text
            reasons[choice.index] = choice.finish_reason or reasons[choice.index]
    assert texts == [c.text for c in whole.choices]
    assert reasons == [c.finish_reason for c in whole.choices]
    assert not any("\n    return" in t or "result" in t for t in texts)  # stop sequences are never streamed
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert len(chunks) > 10  # streamed token by token, not in one piece


def test_openai_stream_ends_with_done(server: str, tiny_model: Path) -> None:
    body = {"model": str(tiny_model), "prompt": PROBLEM.prompt, "max_tokens": 5, "stream": True}
    with httpx.stream("POST", f"{server}/v1/completions", json=body, timeout=60) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(json.loads(line.removeprefix("data: "))["object"] == "text_completion" for line in lines[:-1])


def test_a_client_that_goes_away_frees_its_rows(server: str, tiny_model: Path) -> None:
    def metric(pattern: str) -> float:
        match = re.search(pattern + r" ([\d.e+]+)$", httpx.get(f"{server}/metrics").text, re.M)
        return float(match.group(1)) if match else 0.0

    cancelled = 'codequant_finished_sequences_total{reason="cancelled"}'
    before = metric(re.escape(cancelled))
    # Temperature 2 on the tiny model: near-uniform tokens, so no row ends by itself for hundreds of tokens.
    body = {"model": str(tiny_model), "prompt": "def", "n": 4, "max_tokens": 1500, "temperature": 2, "seed": 0}
    with httpx.stream("POST", f"{server}/v1/completions", json={**body, "stream": True}, timeout=60) as response:
        next(response.iter_lines())  # the first chunk arrived, so the rows are decoding: hang up
    deadline = time.monotonic() + 60
    while metric("^codequant_running_sequences") > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric("^codequant_running_sequences") == 0
    assert metric(re.escape(cancelled)) - before == 4
