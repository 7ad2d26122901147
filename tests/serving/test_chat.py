"""/v1/chat/completions formats messages with the model tokenizer's own chat template; the generator's
`openai-chat` mode samples through it. A copy of the tiny model gets a plain template (the user's text as prompt)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from transformers import AutoTokenizer

from codequant.benchmarks import load_benchmark
from codequant.launch import running_server
from codequant.study.methods import EndpointSpec
from codequant_generator.api import generate_completions

PROBLEMS = load_benchmark("humaneval", limit=2).problems
TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"  # the user's text, as a prompt


@pytest.fixture(scope="module")
def chat_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("chat") / "tiny-chat"
    shutil.copytree(tiny_model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def server(chat_model: Path) -> Iterator[str]:
    with running_server(str(chat_model), max_batch_size=16) as url:
        yield url


@pytest.fixture(scope="module")
def oai(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="none", max_retries=0)


def test_chat_uses_the_template_and_samples_like_completions(oai: openai.OpenAI, chat_model: Path) -> None:
    sampling = {"model": str(chat_model), "n": 3, "max_tokens": 60, "temperature": 1.0, "seed": 4, "stop": ["\n\n"]}
    messages = [{"role": "user", "content": PROBLEMS[0].prompt}]
    chat = oai.chat.completions.create(messages=messages, **sampling)
    plain = oai.completions.create(prompt=PROBLEMS[0].prompt, **sampling)  # what this template makes of the message
    assert [c.message.content for c in chat.choices] == [c.text for c in plain.choices]
    assert all(c.message.role == "assistant" for c in chat.choices) and chat.object == "chat.completion"
    assert [c.finish_reason for c in chat.choices] == [c.finish_reason for c in plain.choices]
    assert chat.usage.prompt_tokens == plain.usage.prompt_tokens

    chunks = list(oai.chat.completions.create(messages=messages, stream=True, **sampling))
    streamed = ["", "", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""
    assert streamed == [c.message.content for c in chat.choices]
    assert {c.choices[0].delta.role for c in chunks[:3]} == {"assistant"}
    assert chunks[0].object == "chat.completion.chunk"


def test_a_template_error_is_a_400(oai: openai.OpenAI, chat_model: Path) -> None:
    with pytest.raises(openai.BadRequestError, match="messages"):
        oai.chat.completions.create(model=str(chat_model), messages=[])


def test_generator_samples_through_chat(server: str) -> None:
    records: list[dict] = []
    generate_completions(
        PROBLEMS,
        EndpointSpec(url=server, api="openai-chat"),
        n=2,
        temperature=0.2,
        top_p=0.95,
        max_new_tokens=120,
        seed=0,
        on_record=records.append,
    )
    assert sorted((r["name"], r["sample"]) for r in records) == sorted((p.name, s) for p in PROBLEMS for s in range(2))
    first = next(r for r in records if r["name"] == PROBLEMS[0].name and r["sample"] == 0)
    assert first["completion"] == first["raw_completion"]  # a chat answer is kept whole (no stop-token cut)
    assert first["completion"].startswith("    for idx, elem in enumerate(numbers):")  # the memorised solution
