"""Every key that decides whether stored work is reused, pinned to a literal digest for a fixed input.

Keys skip work: a key that changes silently re-runs everything stored (or, worse, a key that drops an input
reuses work it should not). So each key function's output is pinned here. A change to one of these literals must
be deliberate and come with a migration note (docs/architecture.md, "Keys"): what changed, and what happens to
stores and caches made before.
"""

from __future__ import annotations

from pathlib import Path

from codequant.keys import EXECUTION_KEY_VERSION, completion_key, execution_key, stable_hash, variant_key
from codequant.limits import Limits
from codequant.results import completion_keys, sample_keys
from codequant.study import parse_study

REPO = Path(__file__).resolve().parents[2]

#: Every method (aqlm at each preset), an endpoint variant; completion, instruct and instruct-without-prefix
#: prompts; a benchmark with its own token budget.
SPEC = """\
name: pins
models:
  - name: m
    hub_id: org/m
    revision: 0123abc
    dtype: bfloat16
    variants:
      - {name: base, method: baseline}
      - {name: aqlm-2bit, method: aqlm, preset: aqlm-2bit}
      - {name: aqlm-3bit, method: aqlm, preset: aqlm-3bit}
      - {name: aqlm-4bit, method: aqlm, preset: aqlm-4bit}
      - {name: aqlm-8bit, method: aqlm, preset: aqlm-8bit}
      - {name: aqlm-code-ft, method: aqlm, preset: aqlm-2bit, calibration: code, finetune: true}
      - {name: rtn-4bit, method: rtn, bits: 4}
      - {name: gptq, method: gptq}
      - {name: awq, method: awq}
      - {name: int8, method: bnb-int8}
      - {name: nf4, method: bnb-nf4}
  - name: remote
    hub_id: org/remote
    variants:
      - {name: served, method: baseline, endpoint: {url: "http://gpu-box:8080", api: openai}}
benchmarks:
  - {name: humaneval, limit: 2}
  - {name: mceval-java, limit: 2, max_new_tokens: 1500}
  - {name: mceval-python, limit: 2, prompt_mode: instruct}
  - {name: multiple-humaneval-java, limit: 2, prompt_mode: instruct, response_prefix: false}
sampling: {n: 2}
"""


def test_the_key_primitives_are_pinned() -> None:
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert stable_hash({"b": [1, "x", None], "a": 1.5, "ü": True}) == (
        "cf649bb9b0af483495c24c4cc53796faaf75736d7ebde3e941b5baeca3fe6a85"
    )
    model = {"hub_id": "org/m", "revision": None, "dtype": "float16"}
    assert variant_key(model, {"method": "rtn", "bits": 4}) == "b5b9efe92053ed5d5a8d799ab3b477c8"
    sampling = {"temperature": 0.2, "top_p": 0.95, "max_new_tokens": 512, "seed": 0}
    assert completion_key("v" * 32, "humaneval", "HumanEval_0", 3, sampling) == (
        "cc42cad1fbf90282aeaa558ffb013656b2b20d4f"
    )


def test_execution_keys_are_pinned() -> None:
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert EXECUTION_KEY_VERSION == 2
    assert Limits().as_key() == {"timeout_s": 15.0, "memory_mb": 1024, "max_output_bytes": 64000}
    assert execution_key("print(1)\n", "python", Limits().as_key()) == "f42eb7d47b49efb3a86725d843a4c37bb8d064f5"
    program = "def f():\n    return 1\n\nassert f() == 1\n"
    limits = Limits(timeout_s=10.0, memory_mb=1024).as_key()
    assert execution_key(program, "python", limits, 4) == "b81baa8db6572e2a3ae9d4febdfd749240cbdd30"


def test_variant_keys_of_every_method_and_an_endpoint_are_pinned() -> None:
    """A variant's key covers its method config with every default filled in: a changed default is a changed key."""
    study = parse_study(SPEC)
    model, remote = study.models
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert {v.name: model.variant_key(v.name) for v in model.variants} == {
        "base": "3fd90d32c636390e1958fc4301e83b48",
        "aqlm-2bit": "d366971a4bc529c81b49fd9d6b9caef2",
        "aqlm-3bit": "260d338cd541cff4ff07a3dff640716d",
        "aqlm-4bit": "79464ecc44f6912279662c5f308b2e6e",
        "aqlm-8bit": "7ea49a4650216bfeaa5394e0666238a1",
        "aqlm-code-ft": "a3ed2872b6eaf39dd9033b9cb1e4e6cf",
        "rtn-4bit": "fe1a4f4137332d9ae70af4142f99feaf",
        "gptq": "6ef8bad76b859d15d4a51e6656ad460b",
        "awq": "a33379629cce35dbcabd1e62b02c7e95",
        "int8": "5d4c25818722c6508020503d82da735e",
        "nf4": "710ff7df628c5d4c3663bc93cb3398c2",
    }
    assert remote.variant_key("served") == "d00f896fe8b1db1caec5e1a2d79fb7ab"


def test_completion_keys_of_each_prompt_mode_are_pinned() -> None:
    study = parse_study(SPEC)
    base = study.models[0].variant_key("base")
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert {b.name: completion_keys(study, base, b.name, ["P"])[("P", 1)] for b in study.benchmarks} == {
        "humaneval": "50c97daea4ea63eb0461a8e9ab681cecef676856",
        "mceval-java": "ed662b2a0ec3f83d7d0795792549dbb53d68c44f",
        "mceval-python": "f561fa39dfe1b8fc8a7726e50b9758d46ac8d807",
        "multiple-humaneval-java": "bf3fb9822db1f9838761ffc93900347bde96abd1",
    }
    params = study.sampling_params("humaneval")
    assert sample_keys(base, "humaneval", ["P"], params)[("P", 1)] == "50c97daea4ea63eb0461a8e9ab681cecef676856"


def test_the_demo_study_keys_are_pinned() -> None:
    """The demo's stored variants and completions stay reusable."""
    study = parse_study((REPO / "examples" / "demo.yaml").read_text())
    (model,) = study.models
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert {v.name: model.variant_key(v.name) for v in model.variants} == {
        "fp32": "363b08c0c7d9f1febebbadcf6d51bd67",
        "aqlm-1x8-code": "b41dc3caf49388bd214195d333778c9c",
        "aqlm-2x8-random": "f3576f55fe9fa949f55dffdfce85d31e",
        "aqlm-2x8-code": "3ff55b046d152cca582c2018ceb34884",
        "aqlm-1x8-code-ft": "f2335d2de63794b608030a1cef0a97de",
        "rtn-2bit": "c28dc76206986c27e5cca9261b4f3441",
        "rtn-3bit": "426c1a29af574ad98a4c25a3e0a3f28e",
    }
    base = model.variant_key("fp32")
    assert {b.name: completion_keys(study, base, b.name, ["P"])[("P", 0)] for b in study.benchmarks} == {
        "humaneval": "77b7cbf3f319820ea635604e4a3abef4f8228acd",
        "mceval-java": "84ecc28fd750bd66349161e9d5605a2b74733e00",
        "multiple-humaneval-java": "2888d3aa9fb1a6c1b13f86ab8e891e13962f6fab",
    }
