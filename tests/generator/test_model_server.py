"""Which server samples a self-served variant: vLLM by default on GPU hosts for the formats it serves, codequant's
own server for AQLM and on CPU hosts. No GPU here, so vLLM is played by a stand-in executable that accepts only
the `vllm serve` options codequant passes and hands the model to `codequant serve`; the launch, health wait,
OpenAI sampling and bookkeeping are codequant's real code path."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from codequant.errors import ServiceError
from codequant.launch import resolve_server, server_command
from codequant.payloads import GenerateRequest
from codequant.results import sample_keys
from codequant.store import Completion, Store, Variant
from codequant.study import parse_study
from codequant.study.methods import methods, variant_class
from codequant.study.spec import BenchmarkSpec, SamplingParams
from codequant_generator.stage import generate_variant
from tests.cli import CLI

STAND_IN = f"""#!{sys.executable}
# vLLM's `serve` command line (v0.33), parsed strictly: an option vLLM does not have is an error here too.
import argparse, os, sys
parser = argparse.ArgumentParser(prog="vllm")
sub = parser.add_subparsers(dest="command", required=True)
serve = sub.add_parser("serve")
serve.add_argument("model")
serve.add_argument("--host", required=True)
serve.add_argument("--port", type=int, required=True)
serve.add_argument("--dtype", choices=["auto", "half", "float16", "bfloat16", "float", "float32"], required=True)
serve.add_argument("--max-num-seqs", type=int, required=True)
serve.add_argument("--seed", type=int)
serve.add_argument("--disable-log-requests", action="store_true")
args = parser.parse_args()
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
os.execv(sys.executable, {CLI!r} + ["serve", "--model",
         args.model, "--host", args.host, "--port", str(args.port), "--dtype", args.dtype,
         "--max-batch-size", str(args.max_num_seqs)])
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `vllm` on this worker (via $CODEQUANT_VLLM); returns the file its invocations are logged to."""
    log = tmp_path / "vllm-invocations.log"
    monkeypatch.setenv("CODEQUANT_VLLM", str(_executable(tmp_path / "vllm", STAND_IN)))
    monkeypatch.setenv("STAND_IN_LOG", str(log))
    return log


@pytest.fixture
def gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A visible NVIDIA driver tool, as in a GPU container."""
    tools = tmp_path / "gpu-bin"
    tools.mkdir()
    _executable(tools / "nvidia-smi", "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_auto_means_vllm_only_with_vllm_and_a_gpu(
    vllm: Path, gpu: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_server("auto") == "vllm"
    assert resolve_server("codequant") == "codequant"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # GPUs hidden from this worker
    assert resolve_server("auto") == "codequant"
    assert resolve_server("vllm") == "vllm"  # asked for explicitly: vLLM decides what it can run on
    monkeypatch.setenv("CODEQUANT_VLLM", str(tmp_path / "missing"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert resolve_server("auto") == "codequant"
    with pytest.raises(ServiceError, match=r"serving\.server is vllm, but this worker has no vLLM"):
        resolve_server("vllm")


def test_a_cpu_host_without_vllm_keeps_codequants_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("CODEQUANT_VLLM", raising=False)
    assert resolve_server("auto") == "codequant"
    assert server_command("codequant", "/m", host="127.0.0.1", port=9)[3:6] == ["serve", "--model", "/m"]


def test_only_aqlm_is_kept_off_vllm() -> None:
    """vLLM removed AQLM; every other method's folder is a format vLLM loads (fp16, compressed-tensors, bnb)."""
    assert {method for method in methods() if not variant_class(method).vllm_servable} == {"aqlm"}


STUDY = """
name: served
models:
  - name: tiny
    builtin: {{kind: tiny-code, profile: test}}
    variants:
      - {{name: base, method: baseline}}
      - {{name: a2, method: aqlm, num_codebooks: 1, nbits_per_codebook: 8, in_group_size: 8}}
      - {{name: r4, method: rtn, bits: 4, group_size: 32}}
benchmarks: [humaneval]
{serving}
"""


@pytest.mark.parametrize("serving", ["", "serving: {server: vllm}", "serving: {server: codequant}"])
def test_the_study_asks_for_vllm_for_every_variant_but_aqlm(serving: str, tmp_path: Path) -> None:
    from codequant_orchestrator.plan import plan_study
    from codequant_orchestrator.stages import generate_request

    study = parse_study(STUDY.format(serving=serving), source="served.yaml")
    chosen = study.serving.server
    plan = plan_study(study)
    servers = {
        v.variant.name: generate_request(plan, v, ["humaneval"], str(tmp_path / "m"), "sqlite://").server
        for v in plan.variants
    }
    assert servers == {"base": chosen, "a2": "codequant", "r4": chosen}


def test_a_variant_is_sampled_through_vllm_on_a_gpu_host(
    vllm: Path, gpu: None, tiny_model: Path, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    Store(store_url).insert_ignore(
        Variant, [{"key": "v", "model_name": "tiny", "variant_name": "base", "method": "baseline"}]
    )
    spec = BenchmarkSpec(name="humaneval", limit=2)
    sampling = SamplingParams(n=2, temperature=0.2, top_p=0.95, max_new_tokens=16)
    request = GenerateRequest(
        study_id="s", variant_key="v", benchmarks=[spec], sampling={"humaneval": sampling}, model=str(tiny_model),
        server="auto", store_url=store_url,
    )  # fmt: skip
    result = generate_variant(request)
    assert result.generated == {"humaneval": 4}
    assert result.environment["model_server"] == f"vLLM ({os.environ['CODEQUANT_VLLM']})"
    assert "codequant-serving" not in result.environment  # the samples did not come from codequant's server
    (invocation,) = vllm.read_text().splitlines()
    assert invocation.startswith(f"serve {tiny_model} --host 127.0.0.1 --port ")
    assert invocation.endswith("--dtype auto --max-num-seqs 32 --seed 0 --disable-log-requests")
    keys = sample_keys("v", "humaneval", [p.name for p in spec.load().problems], sampling).values()
    assert len(Store(store_url).existing_keys(Completion, keys)) == 4
