"""`codequant serve`'s /codequant routes on the tiny model: memory as served, perplexity, tokens per choice."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from codequant.benchmarks import load_benchmark
from codequant.heldout import HELD_OUT_CODE, NAME, held_out_texts

TRAINED = load_benchmark("humaneval").problems[0]  # the tiny model memorised this problem


def test_memory_says_what_it_measured(server: str) -> None:
    memory = httpx.get(f"{server}/codequant/memory", timeout=30).json()
    assert memory["device"] == "cpu" and memory["source"].startswith("process peak RSS")
    # The tiny model's weights are a few MB; the process holding torch is far larger than them.
    assert 1e5 < memory["model_bytes"] < 1e8
    assert memory["peak_bytes"] >= memory["current_bytes"] > memory["model_bytes"]


def test_perplexity_is_lower_on_code_the_model_was_trained_on(server: str) -> None:
    trained = TRAINED.prompt + TRAINED.canonical_solution
    seen = httpx.post(f"{server}/codequant/perplexity", json={"texts": [trained]}, timeout=120).json()
    held_out = httpx.post(f"{server}/codequant/perplexity", json={}, timeout=300).json()
    assert seen["set"] == "request" and held_out["set"] == NAME and held_out["texts"] == len(held_out_texts())
    assert held_out["tokens"] > 2000 and math.isfinite(held_out["perplexity"])
    assert 1 <= seen["perplexity"] < 3 < held_out["perplexity"]
    capped = httpx.post(f"{server}/codequant/perplexity", json={"texts": [trained], "max_tokens": 8}, timeout=60)
    assert capped.json()["tokens"] == 7


def test_bad_perplexity_requests_are_422(server: str) -> None:
    for body in ({"texts": []}, {"max_tokens": 1}, {"text": "x"}):
        answer = httpx.post(f"{server}/codequant/perplexity", json=body, timeout=30)
        assert answer.status_code == 422, body


def test_each_choice_says_its_completion_tokens(oai: openai.OpenAI) -> None:
    model = oai.models.list().data[0].id
    answer = oai.completions.create(model=model, prompt=TRAINED.prompt, n=4, max_tokens=40, temperature=1.5, seed=3)
    counts = [c.model_extra["completion_tokens"] for c in answer.choices]
    assert all(1 <= c <= 40 for c in counts) and sum(counts) == answer.usage.completion_tokens


def test_the_held_out_set_is_python_and_java_code_of_its_own() -> None:
    assert len(HELD_OUT_CODE["python"]) >= 12 and len(HELD_OUT_CODE["java"]) >= 12
    assert all("class " in text for text in HELD_OUT_CODE["java"])
    for text in HELD_OUT_CODE["python"]:
        compile(text, "<held-out>", "exec")  # every Python snippet is valid Python
    trained = "\n".join(p.prompt + p.canonical_solution for p in load_benchmark("humaneval").problems)
    assert not any(text.splitlines()[0] in trained for text in held_out_texts())


@pytest.mark.skipif(shutil.which("javac") is None, reason="needs javac")
def test_every_java_snippet_compiles(tmp_path: Path) -> None:
    files = []
    for text in HELD_OUT_CODE["java"]:
        name = re.search(r"^class (\w+)", text, re.MULTILINE).group(1)
        files.append(tmp_path / f"{name}.java")
        files[-1].write_text(text)
    done = subprocess.run(["javac", "-d", str(tmp_path / "out"), *map(str, files)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
