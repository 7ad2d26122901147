"""Footprints: the reference study's Size column from configs, and folders measured byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

from codequant_quantizer.api import footprint
from tests.cli import codequant, codequant_in_process

# config.json of codellama/CodeLlama-7b-hf and deepseek-ai/deepseek-coder-6.7b-base (architecture fields).
CODELLAMA_7B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32016,
    "max_position_embeddings": 16384,
    "rms_norm_eps": 1e-05,
    "rope_theta": 1000000,
    "tie_word_embeddings": False,
}
DEEPSEEK_67B = {
    **CODELLAMA_7B,
    "vocab_size": 32256,
    "rope_theta": 100000,
    "rope_scaling": {"type": "linear", "factor": 4.0},
}
PAPER = {"aqlm-2bit": 2.26, "aqlm-3bit": 3.80, "aqlm-4bit": 4.00, "aqlm-8bit": 7.47}  # CodeLlama-7B, GB
PRESETS = {"aqlm-8bit": (4, 15), "aqlm-4bit": (2, 15), "aqlm-3bit": (2, 12), "aqlm-2bit": (1, 15)}


def test_codellama_7b_sizes_match_the_reference_study() -> None:
    assert round(footprint(config=CODELLAMA_7B)["gb"], 2) == 13.48  # the baseline in float16
    for preset, gb in PAPER.items():
        m, b = PRESETS[preset]
        variant = {"method": "aqlm", "num_codebooks": m, "nbits_per_codebook": b, "in_group_size": 8}
        result = footprint(config=CODELLAMA_7B, variant=variant)
        assert round(result["gb"], 2) == gb, preset
        # codes M*B/g plus codebook and scale overhead
        assert m * b / 8 < result["nominal_bits_per_param"] < m * b / 8 + 0.15 * m
        assert result["stored_bits_per_param"] >= result["nominal_bits_per_param"]  # int16 codes for B > 8
    assert round(footprint(config=DEEPSEEK_67B, variant={"method": "baseline"})["gb"], 2) == 13.48


def test_footprint_cli_from_a_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CODELLAMA_7B))
    result = codequant(
        "footprint", "--config", str(config), "--method", "aqlm", "--preset", "aqlm-2bit", "--json", timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert round(json.loads(result.stdout)["gb"], 2) == 2.26
    bad = codequant("footprint", "--config", str(config), "--method", "aqlm", "--preset", "aqlm-9bit", timeout=300)
    assert bad.returncode == 2 and "unknown AQLM preset" in bad.stderr
    neither = codequant("footprint", timeout=300)
    assert neither.returncode == 2 and "exactly one of --model and --config" in neither.stderr
    # The paper's names for the unquantized baseline: fp16 (the default dtype), bf16, fp32.
    sizes = {}
    for name in ("baseline", "fp16", "bf16", "fp32"):
        named = codequant_in_process("footprint", "--config", config, "--method", name, "--json")
        assert named.returncode == 0, named.stderr
        sizes[name] = json.loads(named.stdout)["total_bytes"]
    assert sizes["fp16"] == sizes["bf16"] == sizes["baseline"] == sizes["fp32"] // 2
