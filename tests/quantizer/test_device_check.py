"""benchmarks/device_check.sh in its CPU fallback at CI size: every stage the GPU check runs — build and train a
Llama model, AQLM 2x8 with end-to-end fine-tuning and a second shape with 16-bit activations, CPU-vs-device
agreement, `codequant serve`, n=20 samples per prompt — on this machine's CPU."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_cpu_fallback_runs_every_stage(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    env = {**os.environ, "CODEQUANT_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "device_check.sh"), "--cpu", "--small", "--work", str(tmp_path / "work"),
         "--json", str(summary_file)],
        capture_output=True, text=True, timeout=1800, env=env, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(summary_file.read_text())
    assert "CPU" in summary["device"] and "tokens/s" in result.stdout and "identical codes" in result.stdout
    assert len(summary["stages_seconds"]) == 5 and all(s > 0 for s in summary["stages_seconds"].values())
    two_by_eight, second = summary["quantized"]["aqlm-2x8"], summary["quantized"]["aqlm-1x8"]
    assert len(two_by_eight["seconds_per_block"]) == 2 and two_by_eight["peak_memory_gb"] > 0
    assert len(two_by_eight["finetune_valid_kl"]) == 2 and two_by_eight["finetune_seconds"] > 0
    assert two_by_eight["activations"] == {"dtype": "float32", "place": "device"}
    assert second["activations"] == {"dtype": "bfloat16", "place": "device"}
    # On one device the same layer quantizes to the same codes, and aqlm's CPU kernel matches the reference.
    assert summary["agreement"]["identical_codes"] == 1.0
    assert summary["agreement"]["kernel"] == "numba_gemm_lut"
    assert summary["agreement"]["kernel_relative_difference"] < 1e-5
    serving = summary["serving"]
    assert serving["completions"] == 3 * 20 and serving["completion_tokens"] > 0 and serving["tokens_per_second"] > 0
