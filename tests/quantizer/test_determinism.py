"""Quantization runs in deterministic mode with a deterministic cuBLAS workspace, set before CUDA can start."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from codequant_quantizer import determinism

PROBE = """
import json, os, sys
import torch
from codequant_quantizer.api import quantize  # importing the quantizer sets the variable
seen_at_import = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
cuda_started = torch.cuda.is_initialized()
quantize(sys.argv[1], {"method": "rtn", "bits": 4, "group_size": 32}, sys.argv[2], progress=False)
print(json.dumps({
    "at_import": seen_at_import,
    "cuda_started_before": cuda_started,
    "after_run": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    "deterministic": torch.are_deterministic_algorithms_enabled(),
    "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
    "matmul_precision": torch.backends.cuda.matmul.fp32_precision,
}))
"""


def test_a_run_sets_the_cublas_workspace_before_cuda_starts(tiny_model: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tiny_model), str(tmp_path / "rtn")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["at_import"] == ":4096:8" and not seen["cuda_started_before"]
    assert seen["after_run"] == ":4096:8" and seen["deterministic"] and seen["matmul_precision"] == "ieee"


@pytest.mark.parametrize(("given", "kept"), [(":16:8", ":16:8"), (":4096:8", ":4096:8"), (":0:0", ":4096:8")])
def test_a_deterministic_setting_is_kept_and_anything_else_replaced(
    monkeypatch: pytest.MonkeyPatch, given: str, kept: str
) -> None:
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", given)
    assert determinism.set_cublas_workspace() is (given != kept)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == kept


def test_setting_it_after_cuda_started_warns(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """CUDA cannot start on this machine: is_initialized is the one thing faked, to reach the warning."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    was_on = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        with caplog.at_level(logging.WARNING, logger=determinism.__name__):
            determinism.deterministic_torch(warn_only=False)
    finally:
        torch.use_deterministic_algorithms(was_on, warn_only=was_warn)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert "set after CUDA started" in caplog.text
