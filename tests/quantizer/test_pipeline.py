"""AQLM on the tiny model end to end: a folder transformers + aqlm load exactly, footprint, resumption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from codequant.errors import InputError
from codequant_quantizer.api import footprint, quantize
from tests.cli import CLI, codequant

QUICK = [
    "--method",
    "aqlm",
    "--num-codebooks",
    "1",
    "--nbits-per-codebook",
    "8",
    "--in-group-size",
    "8",
    "--calibration",
    "code",
    "--nsamples",
    "16",
    "--seqlen",
    "128",
    "--beam-size",
    "2",
    "--max-epochs",
    "2",
]
VARIANT = {
    "method": "aqlm",
    "num_codebooks": 1,
    "nbits_per_codebook": 8,
    "in_group_size": 8,
    "beam_size": 2,
    "max_epochs": 2,
    "calibration": {"set": "code", "nsamples": 16, "seqlen": 128},
}
QUANTIZE = [*CLI, "quantize"]
#: The kill -9 test's runs: the quick settings at one epoch and beam width 1 (the last of a repeated option counts).
RESUMABLE = [*QUICK, "--max-epochs", "1", "--beam-size", "1"]


@pytest.fixture(scope="module")
def quantized(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("aqlm") / "tiny-1x8"
    return quantize(str(tiny_model), VARIANT, out, progress=False)


def test_transformers_and_aqlm_load_it_with_no_missing_or_unexpected_keys(quantized: Path) -> None:
    from aqlm import QuantizedLinear
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from codequant_serving.loading import single_thread_numba

    single_thread_numba()
    model, info = AutoModelForCausalLM.from_pretrained(quantized, dtype=torch.float32, output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}
    assert isinstance(model.model.layers[0].mlp.down_proj, QuantizedLinear)
    assert isinstance(model.lm_head, torch.nn.Linear) and not isinstance(model.lm_head, QuantizedLinear)
    assert model.model.layers[0].self_attn.q_proj.codes.dtype == torch.int8  # Kx8: the numba CPU kernel
    config = json.loads((quantized / "config.json").read_text())["quantization_config"]
    assert {"lm_head", "lm_head.weight"} <= set(config["linear_weights_not_to_quantize"])
    tokenizer = AutoTokenizer.from_pretrained(quantized)
    ids = tokenizer("def add(a, b):\n", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_record_and_footprint_match_the_folder(quantized: Path, tiny_model: Path) -> None:
    record = json.loads((quantized / "quantization.json").read_text())
    assert record["method"] == "aqlm" and record["config"]["num_codebooks"] == 1
    assert len(record["layers"]) == 3 * 7 and all(0 < layer["relative_error"] < 1 for layer in record["layers"])
    assert record["calibration"]["recipe"] == "code" and record["calibration"]["documents_used_per_source"]
    assert {"torch", "transformers", "aqlm"} <= record["versions"].keys()
    measured = footprint(quantized)
    tensors = load_file(quantized / "model.safetensors")
    assert measured["total_bytes"] == sum(t.numel() * t.element_size() for t in tensors.values())
    assert 0 < (quantized / "model.safetensors").stat().st_size - measured["total_bytes"] < 65536  # header only
    config = json.loads((tiny_model / "config.json").read_text())
    variant = {"method": "aqlm", "num_codebooks": 1, "nbits_per_codebook": 8, "in_group_size": 8}
    predicted = footprint(config=config, variant=variant, dtype="fp32")
    assert predicted["total_bytes"] == measured["total_bytes"]
    assert measured["nominal_bits_per_param"] == pytest.approx(measured["stored_bits_per_param"])  # int8 codes


def test_activations_on_disk_give_the_same_bytes(quantized: Path, tiny_model: Path, tmp_path: Path) -> None:
    on_disk = quantize(str(tiny_model), VARIANT, tmp_path / "disk", progress=False, offload="disk")
    record = json.loads((on_disk / "quantization.json").read_text())
    assert record["activations"] == {"dtype": "float32", "place": "disk"} and not (on_disk / ".partial").exists()
    assert [b["block"] for b in record["blocks"]] == [0, 1, 2] and all(b["seconds"] > 0 for b in record["blocks"])
    reference, streamed = load_file(quantized / "model.safetensors"), load_file(on_disk / "model.safetensors")
    assert streamed.keys() == reference.keys()
    for name in reference:
        assert torch.equal(streamed[name], reference[name]), name


def test_a_finished_folder_is_reused(quantized: Path, tiny_model: Path) -> None:
    start = time.monotonic()
    assert quantize(str(tiny_model), VARIANT, quantized, progress=False) == quantized
    assert time.monotonic() - start < 5


def test_a_fine_tuned_variant_starts_from_the_blocks_of_the_same_variant_without_fine_tuning(
    quantized: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuned = {**VARIANT, "finetune": {"epochs": 1, "lr": 1e-4}}
    reused = quantize(str(tiny_model), tuned, tmp_path / "reused", progress=False)  # `quantized` kept its blocks
    layers = json.loads((reused / "quantization.json").read_text())["layers"]
    assert len(layers) == 3 * 7 and all(layer.get("reused_blockwise") for layer in layers)
    monkeypatch.setenv("CODEQUANT_CACHE_DIR", str(tmp_path / "empty-cache"))  # nothing to start from
    fresh = quantize(str(tiny_model), tuned, tmp_path / "fresh", progress=False)
    layers = json.loads((fresh / "quantization.json").read_text())["layers"]
    assert not any(layer.get("reused_blockwise") for layer in layers)
    expected, got = load_file(fresh / "model.safetensors"), load_file(reused / "model.safetensors")
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


def test_a_run_killed_mid_block_resumes_after_its_last_layer_with_the_same_codes(
    tiny_model: Path, tmp_path: Path
) -> None:
    reference_dir = tmp_path / "uninterrupted"  # same process setup as the resumed run: bit-identical arithmetic
    assert (
        codequant(
            "quantize", "--model", str(tiny_model), "--out", str(reference_dir), *RESUMABLE, timeout=900
        ).returncode
        == 0
    )
    out = tmp_path / "resumed"
    run = subprocess.Popen(
        [*QUANTIZE, "--model", str(tiny_model), "--out", str(out), *RESUMABLE],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    progress = out / ".partial" / "progress.json"
    deadline = time.monotonic() + 600
    while True:  # wait until two layers of some block are finished, then kill -9 in the middle of that block
        assert run.poll() is None, "the quantization ended before it could be interrupted"
        assert time.monotonic() < deadline
        if progress.exists() and len(json.loads(progress.read_text())["layers"]) >= 2:
            os.killpg(run.pid, signal.SIGSTOP)  # frozen: what the checkpoint says now is what the kill leaves
            state = json.loads(progress.read_text())
            if state["layers"]:
                os.killpg(run.pid, signal.SIGKILL)
                break
            os.killpg(run.pid, signal.SIGCONT)  # the block finished in between: wait for the next one
        time.sleep(0.05)
    run.wait()
    assert not (out / "quantization.json").exists()
    block, finished = state.get("blocks_done", 0), state["layers"]
    saved = {name: torch.load(out / ".partial" / f"layer_{block}_{name}.pt")["record"] for name in finished}
    result = codequant("quantize", "--model", str(tiny_model), "--out", str(out), *RESUMABLE, timeout=900)
    assert result.returncode == 0, result.stderr
    assert not (out / ".partial").exists()
    record = json.loads((out / "quantization.json").read_text())
    resumed = {layer["name"]: layer for layer in record["layers"] if layer.get("resumed")}
    # The finished layers of the interrupted block were loaded, not quantized again (same record, same seconds);
    # every other layer of that block was quantized by the resumed run.
    assert list(resumed) == finished and all(layer["block"] == block for layer in resumed.values())
    for name, layer in resumed.items():
        assert {k: v for k, v in layer.items() if k not in ("resumed", "block_finetune_relative_mse")} == saved[name]
    assert len(record["layers"]) == 3 * 7 and len(record["blocks"]) == 3
    resumed_tensors = load_file(out / "model.safetensors")
    reference = load_file(reference_dir / "model.safetensors")
    assert resumed_tensors.keys() == reference.keys()
    for name in reference:
        assert torch.equal(resumed_tensors[name], reference[name]), name


def test_bad_requests(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        quantize(str(tiny_model), VARIANT, tmp_path / "busy", progress=False)
    with pytest.raises(InputError, match="'baseline' is not a quantization"):
        quantize(str(tiny_model), {"method": "baseline"}, tmp_path / "baseline", progress=False)
    with pytest.raises(InputError, match="num_codebooks"):
        quantize(str(tiny_model), {**VARIANT, "num_codebooks": 0}, tmp_path / "bad", progress=False)
    result = codequant(
        "quantize", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), *QUICK, timeout=300
    )
    assert result.returncode == 2 and "no such file or folder" in result.stderr and "Traceback" not in result.stderr
