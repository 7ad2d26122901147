"""The memory planner: CodeLlama 7B/13B/34B shapes from their published configs (fixtures/), the offloading it
picks for a GPU's size, `codequant quantize --plan`, and the plan against a measured CPU run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codequant.errors import InputError
from codequant_quantizer.aqlm.planner import DEVICES, GB, Settings, load_model_config, model_shape, plan
from tests.cli import codequant
from tests.quantizer.small_model import TRAIN_MODULES

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
#: Published shapes: hidden, intermediate, blocks, attention heads, key/value heads, vocabulary.
CODELLAMA = {
    "7b": (4096, 11008, 32, 32, 32, 32016),
    "13b": (5120, 13824, 40, 40, 40, 32016),
    "34b": (8192, 22016, 48, 64, 8, 32000),
}


def paper(gpu_gb: float | None, host_gb: float | None = None, **changes) -> Settings:
    """The reference study's 2-bit setting at 1x16 g8 (1024 x 4096 calibration tokens, bfloat16 activations,
    end-to-end fine-tuning) on a GPU."""
    fields = {
        "nsamples": 1024, "seqlen": 4096, "num_codebooks": 1, "nbits_per_codebook": 16, "in_group_size": 8,
        "device": "cuda", "activation_bytes": 2, "weight_bytes": 2, "teacher_bytes": 2, "finetune": True,
        "gpu_memory": None if gpu_gb is None else int(gpu_gb * GB),
        "host_memory": None if host_gb is None else int(host_gb * GB),
    }  # fmt: skip
    return Settings(**{**fields, **changes})


@pytest.fixture(scope="module")
def shapes():
    return {size: model_shape(load_model_config(str(FIXTURES / f"codellama-{size}.json"))) for size in CODELLAMA}


def test_shapes_come_from_the_config_alone(shapes) -> None:
    for size, (h, i, blocks, heads, kv_heads, vocab) in CODELLAMA.items():
        kv = h // heads * kv_heads
        block = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h  # q, o; k, v; gate, up, down; two norms
        shape = shapes[size]
        assert shape.block_params == block and shape.outside_params == 2 * vocab * h + h
        assert shape.params == blocks * block + 2 * vocab * h + h
        assert [x.name for x in shape.linears] == [
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
        ]  # fmt: skip
    assert round(shapes["7b"].params / 1e9, 2) == 6.74 and round(shapes["34b"].params / 1e9, 2) == 33.74


def test_the_activation_buffers_follow_tokens_times_hidden(shapes) -> None:
    for size, (h, *_rest) in CODELLAMA.items():
        host = plan(shapes[size], paper(80, offload="cpu")).host_peak.parts
        assert host["activations (2 buffers)"] == 2 * 1024 * 4096 * h * 2  # bfloat16
        assert host["full-precision model"] == shapes[size].params * 2
        float32 = plan(shapes[size], paper(80, offload="cpu", activation_bytes=4)).host_peak.parts
        assert float32["activations (2 buffers)"] == 2 * host["activations (2 buffers)"]


def test_offloading_is_picked_when_the_gpu_is_too_small(shapes) -> None:
    # 7B: two bfloat16 buffers are 68.7 GB; with the block fine-tuning beside them they do not fit 80 GB.
    on_80 = plan(shapes["7b"], paper(80))
    assert on_80.activations == "cpu" and on_80.device_peak.total <= 0.9 * 80 * GB
    assert not on_80.gradient_checkpointing and not on_80.teacher_offload
    assert "current block in float32" in on_80.device_stages[0].parts
    assert on_80.device_stages[0].parts["current block in float32"] == 4 * shapes["7b"].block_params
    on_h200 = plan(shapes["7b"], paper(141))
    assert on_h200.activations == "device" and on_h200.device_peak.total <= 0.9 * 141 * GB
    # 34B: activations to host memory, and for fine-tuning the 67 GB teacher stays there too.
    big = plan(shapes["34b"], paper(80, host_gb=512))
    assert (big.activations, big.gradient_checkpointing, big.teacher_offload) == ("cpu", True, True)
    assert big.device_peak.total <= 0.9 * 80 * GB
    assert plan(shapes["34b"], paper(80, host_gb=128)).activations == "disk"  # 2 x 68.7 GB + model > 128 GB
    assert plan(shapes["13b"], paper(80, offload="none")).activations == "device"  # as asked, even if too big


def test_planned_time_grows_with_the_model_and_the_codebooks(shapes) -> None:
    h100 = DEVICES["h100"]
    per_block = {size: plan(shapes[size], paper(80), h100).seconds["per_block"] for size in CODELLAMA}
    assert per_block["7b"] < per_block["13b"] < per_block["34b"]
    two_by_eight = plan(shapes["7b"], paper(80, num_codebooks=2, nbits_per_codebook=8), h100).seconds
    one_by_sixteen = plan(shapes["7b"], paper(80), h100).seconds
    assert two_by_eight["per_block"] < one_by_sixteen["per_block"]
    assert one_by_sixteen["total"] == pytest.approx(
        one_by_sixteen["quantization"] + one_by_sixteen["end_to_end_finetune"]
    )
    slower = plan(shapes["7b"], paper(80), DEVICES["a100"]).seconds
    assert slower["total"] > one_by_sixteen["total"]


def test_plan_command_prints_the_plan_from_a_config(tmp_path: Path) -> None:
    result = codequant(
        "quantize",
        "--model",
        str(FIXTURES / "codellama-7b.json"),
        "--plan",
        "--device",
        "cuda",
        "--preset",
        "aqlm-2bit",
        "--finetune",
        "--gpu-memory-gb",
        "80",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "planned" in result.stdout and "GPU peak" in result.stdout and "in host memory" in result.stdout
    assert "68.72 GB" in result.stdout  # the two bfloat16 activation buffers
    bad = codequant(
        "quantize", "--model", str(tmp_path / "missing.json"), "--plan", "--preset", "aqlm-2bit", timeout=300
    )
    assert bad.returncode == 2 and "missing.json" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_configs_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(InputError, match="model_type"):
        model_shape(load_model_config(str(tmp_path)))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match=r"broken\.json"):
        load_model_config(str(tmp_path / "broken.json"))


@pytest.mark.slow
def test_the_plan_matches_a_measured_cpu_run_within_15_percent(tiny_model: Path, tmp_path: Path) -> None:
    """A one-block Llama, narrow (hidden 64) so that 512 x 512 calibration tokens make 67 MB activation buffers
    at little compute: the plan's host peak against the peak resident memory the run added
    (tests/quantizer/peak_memory.py says how it is measured)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, max_position_embeddings=1024, tie_word_embeddings=False,
    )  # fmt: skip
    model = tmp_path / "narrow"
    LlamaForCausalLM(config).save_pretrained(model)
    tokenizer.save_pretrained(model)
    corpus = tmp_path / "corpus.jsonl"
    with corpus.open("w") as handle:
        for path in TRAIN_MODULES[:40]:
            handle.write(json.dumps({"text": path.read_text(errors="replace"), "kind": "code"}) + "\n")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    script = [sys.executable, "-m", "tests.quantizer.peak_memory", str(model), str(tmp_path / "work"), str(corpus)]
    result = subprocess.run([*script, "512", "512"], capture_output=True, text=True, timeout=1800, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["planned_parts"]["activations (2 buffers)"] == 2 * 512 * 512 * 64 * 4
    ratio = measured["planned_bytes"] / measured["measured_bytes"]
    assert 0.85 <= ratio <= 1.15, measured
