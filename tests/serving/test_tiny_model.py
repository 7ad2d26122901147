"""The tiny model fixture: it passes the problems it memorised, fails the others, and quantization hurts it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import torch

from codequant.benchmarks import load_benchmark
from codequant.model_source import builtin_cache_folder
from codequant.settings import cache_dir
from codequant_executor.api import execute_records
from codequant_generator.api import cut_at_stop
from codequant_serving.engine import Engine, Request
from codequant_serving.loading import fix_aqlm_config, load_model
from codequant_tiny import shipped
from codequant_tiny.build import MARKER, build_fingerprint, build_tiny_model, copy_tiny_model, trained_problems
from tests.cli import codequant


def greedy_pass_count(model, tokenizer, problems) -> int:
    engine = Engine(model, tokenizer, max_batch_size=32)
    try:
        futures = [
            engine.submit(Request(prompt=p.prompt, n=1, max_new_tokens=300, do_sample=False, stop=p.stop_tokens))
            for p in problems
        ]
        texts = [f.result()[0].text for f in futures]
    finally:
        engine.close()
    records = [
        {
            "name": p.name,
            "language": p.language,
            "prompt": p.prompt,
            "completion": cut_at_stop(t, p.stop_tokens),
            "tests": p.tests,
        }
        for p, t in zip(problems, texts, strict=True)
    ]
    return sum(r["passed"] for r in execute_records(records))


def fake_rtn(model, bits: int, group: int) -> None:
    """Round-to-nearest of every linear layer but lm_head, asymmetric per group (a quick stand-in)."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and "lm_head" not in name:
                w = module.weight
                grouped = w.reshape(w.shape[0], -1, group)
                low, high = grouped.amin(-1, keepdim=True), grouped.amax(-1, keepdim=True)
                scale = (high - low).clamp(min=1e-8) / (2**bits - 1)
                w.copy_((torch.round((grouped - low) / scale) * scale + low).reshape_as(w))


def test_tiny_model_memorises_its_problems_and_quantization_hurts(tiny_model: Path) -> None:
    trained = trained_problems("test")
    assert set(trained) == {"humaneval", "mceval-python", "mceval-java"}  # never MultiPL-E (its license)
    seen = [p for name, names in trained.items() for p in load_benchmark(name).problems if p.name in names]
    unseen = load_benchmark("humaneval").problems[100:110] + load_benchmark("mceval-java").problems[40:45]
    model, tokenizer = load_model(str(tiny_model))
    full = greedy_pass_count(model, tokenizer, seen)
    assert full >= 0.8 * len(seen)
    assert greedy_pass_count(model, tokenizer, unseen) <= 1
    fake_rtn(model, 2, 64)
    assert greedy_pass_count(model, tokenizer, seen) < full


def test_rebuilding_with_the_same_seed_is_a_cache_hit(tiny_model: Path) -> None:
    start = time.monotonic()
    assert build_tiny_model(tiny_model, seed=0, profile="test", progress=False) == tiny_model
    assert time.monotonic() - start < 10


def tiny_model_cli(out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEQUANT_CACHE_DIR": str(cache)}
    return codequant("tiny-model", "--profile", "test", "--out", out, env=env, timeout=120)


def test_the_cli_copies_the_build_a_study_cached_and_fills_an_empty_cache(tmp_path: Path) -> None:
    # A finished build (test profile, seed 0) where a study's `builtin: tiny-code` caches it; its weights are a
    # sentinel that training could never write, so the CLI must copy the build, not train again.
    cached = builtin_cache_folder("tiny-code", "test", 0).relative_to(cache_dir())
    study_cache = tmp_path / "study-cache"
    build = study_cache / cached
    build.mkdir(parents=True)
    (build / MARKER).write_text(json.dumps({"fingerprint": build_fingerprint("test", 0)}))
    (build / "model.safetensors").write_bytes(b"sentinel weights")
    first = tiny_model_cli(tmp_path / "out", study_cache)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == b"sentinel weights"
    assert not (tmp_path / "out.partial").exists()
    # A finished build in --out fills an empty cache the same way, so the next study does not train either.
    second = tiny_model_cli(tmp_path / "out", tmp_path / "empty-cache")
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "empty-cache" / cached / "model.safetensors").read_bytes() == b"sentinel weights"


def test_a_build_of_other_settings_is_not_copied(tmp_path: Path) -> None:
    build = tmp_path / "other"
    build.mkdir()
    (build / MARKER).write_text(json.dumps({"fingerprint": build_fingerprint("test", 1)}))
    assert not copy_tiny_model(build, tmp_path / "out", seed=0, profile="test")
    assert not (tmp_path / "out").exists()


def test_aqlm_legacy_config_lists_module_names_too() -> None:
    config = {"quant_method": "aqlm", "linear_weights_not_to_quantize": ["model.embed_tokens.weight", "lm_head.weight"]}
    fixed = fix_aqlm_config(config)["linear_weights_not_to_quantize"]
    assert set(fixed) == {"model.embed_tokens.weight", "lm_head.weight", "model.embed_tokens", "lm_head"}
    assert fix_aqlm_config({"quant_method": "gptq", "bits": 4}) == {"quant_method": "gptq", "bits": 4}


def test_the_shipped_build_is_installed_checked_and_named_by_its_weights(tmp_path: Path) -> None:
    cache = tmp_path / "models" / "tiny-code-full-seed0"
    start = time.monotonic()
    folder = build_tiny_model(cache, seed=0, profile="full", progress=False)  # trains nothing
    assert time.monotonic() - start < 10
    assert folder == cache.with_name(f"tiny-code-full-seed0-{shipped.SHA256['model.safetensors'][:12]}")
    assert not shipped.mismatches(folder) and not shipped.mismatches(shipped.fixture())
    assert json.loads((folder / MARKER).read_text())["fingerprint"] == build_fingerprint("full", 0)
    # A damaged copy in the cache is replaced by a good one.
    (folder / "model.safetensors").write_bytes(b"damaged")
    assert build_tiny_model(cache, seed=0, profile="full", progress=False) == folder
    assert shipped.mismatches(folder) == []


def test_the_cli_copies_the_shipped_build(tmp_path: Path) -> None:
    env = {**os.environ, "CODEQUANT_CACHE_DIR": str(tmp_path / "cache")}
    done = codequant("tiny-model", "--out", tmp_path / "out", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert shipped.mismatches(tmp_path / "out") == []
