"""`codequant serve` on the tiny model, driven by the real huggingface_hub and openai clients."""

from __future__ import annotations

import concurrent.futures
import re
from pathlib import Path

import httpx
import openai
import pytest
from huggingface_hub import InferenceClient

from codequant.benchmarks import load_benchmark

PROBLEM = load_benchmark("humaneval").problems[0]  # trained by the test profile


def test_tgi_generate_with_the_real_inference_client(server: str) -> None:
    client = InferenceClient(model=server)
    output = client.text_generation(PROBLEM.prompt, max_new_tokens=200, stop=PROBLEM.stop_tokens, details=True)
    assert output.generated_text.startswith("    for idx, elem in enumerate(numbers):")
    assert output.details.finish_reason in ("eos_token", "stop_sequence")
    assert output.details.generated_tokens > 10
    short = client.text_generation(PROBLEM.prompt, max_new_tokens=3, details=True)
    assert short.details.finish_reason == "length" and short.details.generated_tokens == 3


def test_tgi_stop_sequences_end_the_text(server: str) -> None:
    client = InferenceClient(model=server)
    output = client.text_generation(PROBLEM.prompt, max_new_tokens=200, stop=["numbers"], details=True)
    assert output.generated_text.endswith("numbers") and output.generated_text.count("numbers") == 1
    assert output.details.finish_reason == "stop_sequence"


def test_openai_n_samples_seeds_and_stops(oai: openai.OpenAI, server: str) -> None:
    model = oai.models.list().data[0].id
    request = {
        "model": model,
        "prompt": PROBLEM.prompt,
        "n": 6,
        "max_tokens": 120,
        "temperature": 1.5,
        "top_p": 1.0,
        "stop": ["\n    return"],
        "seed": 7,
    }
    first = oai.completions.create(**request)
    again = oai.completions.create(**request)
    other = oai.completions.create(**{**request, "seed": 8})
    texts = [c.text for c in first.choices]
    assert len(texts) == 6 and [c.index for c in first.choices] == list(range(6))
    assert texts == [c.text for c in again.choices]  # seeded: reproducible
    assert texts != [c.text for c in other.choices]
    assert len(set(texts)) > 1  # each sample has its own generator
    assert all("\n    return" not in t for t in texts)  # the stop sequence is not part of OpenAI's text
    assert first.usage.prompt_tokens > 20 and first.usage.completion_tokens > 0
    assert {c.finish_reason for c in first.choices} <= {"stop", "length"}


def test_more_samples_than_a_batch_wait_their_turn(oai: openai.OpenAI, server: str) -> None:
    # The server decodes 16 sequences at most (conftest): 20 samples join the batch in parts, each seeded as if
    # they all fitted, so the first 6 are those of the same request for 6.
    request = {"model": "any", "prompt": PROBLEM.prompt, "max_tokens": 24, "temperature": 1.5, "top_p": 1.0, "seed": 7}
    many = oai.completions.create(**request, n=20)
    few = oai.completions.create(**request, n=6)
    assert [c.index for c in many.choices] == list(range(20))
    assert [c.text for c in many.choices[:6]] == [c.text for c in few.choices]
    assert len({c.text for c in many.choices}) > 6
    streamed = oai.completions.create(**request, n=20, stream=True)
    texts = [""] * 20
    for chunk in streamed:
        for choice in chunk.choices:
            texts[choice.index] += choice.text
    assert texts == [c.text for c in many.choices]


def test_huggingface_hub_clients_work_as_with_tgi(server: str) -> None:
    client = InferenceClient(base_url=server)
    # TGI echoes the seed the request was sampled with.
    output = client.text_generation(PROBLEM.prompt, max_new_tokens=8, do_sample=True, seed=7, details=True)
    assert output.details.seed == 7
    unseeded = client.text_generation(PROBLEM.prompt, max_new_tokens=8, do_sample=True, details=True)
    assert isinstance(unseeded.details.seed, int)
    # chat_completion names the model "dummy" for a URL; TGI serves its one model whatever the name.
    chat = client.chat_completion(
        [{"role": "user", "content": f"```python\n{PROBLEM.prompt}```"}], max_tokens=40, seed=7, temperature=0.0
    )
    assert chat.choices[0].message.content.startswith("    for idx, elem in enumerate(numbers):")
    assert chat.choices[0].finish_reason in ("stop", "length")


def test_concurrent_requests_are_batched(server: str) -> None:
    def one(seed: int) -> str:
        response = httpx.post(
            f"{server}/generate",
            json={
                "inputs": PROBLEM.prompt,
                "parameters": {"max_new_tokens": 40, "do_sample": True, "temperature": 0.8, "seed": seed},
            },
            timeout=120,
        )
        response.raise_for_status()
        return response.json()["generated_text"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(one, range(8)))
    assert all(texts)
    metrics = httpx.get(f"{server}/metrics").text
    buckets = {
        int(float(m.group(1))): float(m.group(2))
        for m in re.finditer(r'codequant_batch_rows_bucket\{le="([\d.]+)"\} ([\d.]+)', metrics)
    }
    count = float(re.search(r"codequant_batch_rows_count ([\d.]+)", metrics).group(1))
    assert buckets[1] < count, "no batch ever held more than one sequence"
    assert "codequant_generated_tokens_total" in metrics and 'route="/generate",status="200"' in metrics


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/generate", {"inputs": "def f():", "parameters": {"max_new_tokens": 0}}, 422, "max_new_tokens"),
        ("/generate", {"inputs": "def f():", "parameters": {"top_p": 1.5}}, 422, "top_p"),
        ("/generate", {"inputs": "def f():", "parameters": {"stop": ["a", "b", "c", "d", "e"]}}, 422, "stop"),
        ("/generate", {"inputs": "x " * 3000, "parameters": {"max_new_tokens": 10}}, 422, "must be <="),
        ("/generate", {"inputs": "def f():", "stream": True}, 422, "/generate_stream"),
        ("/generate", {"parameters": {}}, 422, "inputs"),
        ("/generate_stream", {"inputs": "def f():", "parameters": {"max_new_tokens": 0}}, 422, "max_new_tokens"),
        (
            "/v1/completions",
            {"model": "MODEL", "prompt": "x", "n": 0},
            400,
            "n: Input should be greater than or equal to 1",
        ),
        ("/v1/completions", {"model": "MODEL", "prompt": "x", "temperature": -1}, 400, "temperature"),
        ("/v1/completions", {"model": "MODEL", "prompt": ""}, 400, "prompt"),
        (
            "/v1/chat/completions",
            {"model": "MODEL", "messages": [{"role": "user", "content": "x"}], "continue_final_message": True},
            400,
            "add_generation_prompt",
        ),
        ("/v1/chat/completions", {"model": "MODEL", "messages": []}, 400, "messages"),
    ],
)
def test_bad_requests_get_4xx_json_errors(
    server: str, tiny_model: Path, path: str, body: dict, status: int, needle: str
) -> None:
    if body.get("model") == "MODEL":
        body = {**body, "model": str(tiny_model)}
    response = httpx.post(f"{server}{path}", json=body, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    message = error["message"] if isinstance(error, dict) else error
    assert needle in message
    assert httpx.get(f"{server}/health").status_code == 200


def test_info_and_models(server: str, tiny_model: Path) -> None:
    info = httpx.get(f"{server}/info").json()
    assert info["model_id"] == str(tiny_model) and info["max_stop_sequences"] == 4 and info["model_dtype"] == "float32"
    models = httpx.get(f"{server}/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == str(tiny_model)
