"""Instruct mode on the real tiny model: its chat template, `codequant serve` continuing the assistant's response
prefix (vLLM's continue_final_message), and the generator's instruct records run against the shipped tests."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import openai
import pytest
from transformers import AutoTokenizer

from codequant import instruct
from codequant.benchmarks import load_benchmark
from codequant.study.methods import EndpointSpec
from codequant_executor.api import execute_records
from codequant_generator.api import generate_completions
from codequant_serving.engine import RequestError
from codequant_serving.openai_routes import ChatMessage, chat_prompt
from codequant_tiny.build import CHAT_TEMPLATE, CHAT_TEMPLATE_FILE, build_tiny_model, trained_problems

TRAINED = trained_problems("test")
HUMANEVAL = [p for p in load_benchmark("humaneval").problems if p.name in TRAINED["humaneval"]][:4]
JAVA = [p for p in load_benchmark("mceval-java").problems if p.name in TRAINED["mceval-java"]][:2]


def _digests(folder: Path) -> dict[str, str]:
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.iterdir())
        if f.is_file() and f.name != CHAT_TEMPLATE_FILE
    }


def test_the_tiny_model_has_a_chat_template_that_leaves_its_weights_alone(tiny_model: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    problem = HUMANEVAL[0]
    for with_prefix in (True, False):  # either way the model sees exactly the prompt it was trained to continue
        chat = instruct.messages(problem, with_prefix=with_prefix)
        rendered = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=not with_prefix)
        assert rendered == problem.prompt
    # A model cached before the template existed gains it on the next build call: a cache hit, files untouched.
    old = tmp_path / "tiny"
    shutil.copytree(tiny_model, old)
    (old / CHAT_TEMPLATE_FILE).unlink()
    before = _digests(old)
    assert "model.safetensors" in before
    build_tiny_model(old, 0, profile="test", progress=False)
    assert _digests(old) == before
    assert (old / CHAT_TEMPLATE_FILE).read_text() == CHAT_TEMPLATE


def test_a_tokenizer_without_a_template_cannot_chat(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = None
    with pytest.raises(RequestError, match="no chat template"):
        chat_prompt(tokenizer, [ChatMessage(role="user", content="x")])


def test_chat_continues_the_final_assistant_message(oai: openai.OpenAI, tiny_model: Path) -> None:
    problem = HUMANEVAL[0]
    sampling = {"model": str(tiny_model), "max_tokens": 120, "temperature": 0}
    chat = oai.chat.completions.create(
        messages=instruct.messages(problem),
        extra_body={"continue_final_message": True, "add_generation_prompt": False},
        **sampling,
    )
    plain = oai.completions.create(prompt=problem.prompt, **sampling)
    assert chat.choices[0].message.content == plain.choices[0].text
    assert chat.usage.prompt_tokens == plain.usage.prompt_tokens
    with pytest.raises(openai.BadRequestError, match="add_generation_prompt"):
        oai.chat.completions.create(
            messages=instruct.messages(problem), extra_body={"continue_final_message": True}, **sampling
        )
    with pytest.raises(openai.BadRequestError, match="assistant"):
        oai.chat.completions.create(
            messages=instruct.messages(problem, with_prefix=False),
            extra_body={"continue_final_message": True, "add_generation_prompt": False},
            **sampling,
        )


def _verdicts(records: list[dict], by_name: dict) -> dict[str, bool]:
    """Records run as `codequant execute` runs them: prompt + completion + "\n" + tests."""
    runs = [{**r, "tests": by_name[r["name"]].tests} for r in records]
    return {r["name"]: r["passed"] for r in execute_records(runs, workers=2)}


@pytest.mark.parametrize("api", ["openai", "openai-chat"])
def test_instruct_records_extract_and_pass_as_completions_do(server: str, api: str) -> None:
    problems = HUMANEVAL + JAVA
    by_name = {p.name: p for p in problems}
    sampling = {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 300, "seed": 0}
    chats: list[dict] = []
    generate_completions(
        problems, EndpointSpec(url=server, api=api), prompt_mode="instruct", on_record=chats.append, **sampling
    )
    plain: list[dict] = []
    generate_completions(problems, EndpointSpec(url=server, api="openai"), on_record=plain.append, **sampling)
    assert sorted(r["name"] for r in chats) == sorted(by_name)
    for record in chats:
        problem = by_name[record["name"]]
        assert record["raw_completion"].startswith(problem.prompt)  # the response prefix, then the model's text
        assert record["extracted"] and record["completion"].startswith(problem.prompt)
        assert record["prompt"] == "" and record["prompt_mode"] == "instruct"
    passed = _verdicts(chats, by_name)
    assert passed == _verdicts(plain, by_name)  # greedy: the same code, the same verdict
    assert sum(passed.values()) >= 3  # memorised problems pass through the chat route too


def test_instruct_mode_needs_a_chat_api(server: str) -> None:
    from codequant.errors import InputError

    with pytest.raises(InputError, match="chat API"):
        generate_completions(
            HUMANEVAL[:1],
            EndpointSpec(url=server, api="tgi"),
            n=1,
            temperature=0,
            top_p=1,
            max_new_tokens=8,
            seed=0,
            prompt_mode="instruct",
            on_record=lambda _r: None,
        )
