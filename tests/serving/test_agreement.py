"""The serving agreement check: `codequant serve` decodes greedily what transformers' own generate decodes on
the same folder (fp32 and AQLM), and a server that decodes something else is caught at the first differing
problem and token, found here independently from both models' token ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from codequant.benchmarks import load_benchmark
from codequant.study import parse_study
from codequant_orchestrator.agreement import check_agreement, check_study_variant
from codequant_orchestrator.plan import plan_study
from codequant_quantizer.api import quantize
from codequant_serving.loading import load_model
from tests.cli import codequant, codequant_in_process

TOKENS = 48
#: The cheapest AQLM that still runs aqlm's numba kernel on CPU (8-bit codebooks): agreement needs no quality.
CHEAP_AQLM = {
    "method": "aqlm",
    "num_codebooks": 1,
    "nbits_per_codebook": 8,
    "in_group_size": 8,
    "beam_size": 1,
    "max_epochs": 1,
    "calibration": {"set": "random", "nsamples": 4, "seqlen": 32},
}


def _greedy_ids(folder: Path, prompts: list[str]) -> list[list[int]]:
    model, tokenizer = load_model(str(folder))
    ids = []
    with torch.no_grad():
        for prompt in prompts:
            inputs = tokenizer(prompt, return_tensors="pt")
            out = model.generate(**inputs, max_new_tokens=TOKENS, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            generated = out[0, inputs["input_ids"].shape[1] :].tolist()
            ids.append(generated[:-1] if generated[-1:] == [tokenizer.eos_token_id] else generated)
    return ids


@pytest.fixture(scope="module")
def perturbed_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with noise in its MLPs: what a server with a broken kernel would effectively run."""
    model, tokenizer = load_model(str(tiny_model))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in model.model.layers:
            weight = layer.mlp.down_proj.weight
            weight += weight.std() * torch.randn(weight.shape, generator=generator)
    folder = tmp_path_factory.mktemp("perturbed")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_served_fp32_agrees_with_transformers_in_tokens_and_pass1(tiny_model: Path, server: str) -> None:
    problems = load_benchmark("humaneval", limit=4)
    result = check_agreement(str(tiny_model), problems, max_new_tokens=TOKENS, url=server)
    assert result.first_difference is None, result.summary()
    assert result.identical_rate == 1.0 and result.token_agreement == 1.0
    greedy = _greedy_ids(tiny_model, [p.prompt for p in problems.problems])
    assert [(p.reference_tokens, p.served_tokens) for p in result.problems] == [(len(i), len(i)) for i in greedy]
    assert result.pass1("reference") == result.pass1("served") and result.verdict_agreement == 1.0
    assert result.pass1("reference") > 0  # the memorising model solves some: the verdicts were really run
    assert "4/4 completions identical, tokens 100.0% agree" in result.summary()


def test_a_server_running_other_weights_is_caught_at_the_first_differing_token(
    tiny_model: Path, perturbed_model: Path, server: str
) -> None:
    problems = load_benchmark("humaneval", limit=4)
    prompts = [p.prompt for p in problems.problems]
    result = check_agreement(str(perturbed_model), problems, max_new_tokens=TOKENS, url=server, execute=False)
    reference, served = _greedy_ids(perturbed_model, prompts), _greedy_ids(tiny_model, prompts)
    differing = [
        (problem.name, next((i for i, (a, b) in enumerate(zip(r, s, strict=False)) if a != b), min(len(r), len(s))))
        for problem, r, s in zip(problems.problems, reference, served, strict=True)
        if r != s
    ]
    assert differing, "the perturbation changed no greedy completion: make it stronger"
    first = result.first_difference
    assert first is not None and (first["problem"], first["token"]) == differing[0]
    assert result.identical_rate == 1 - len(differing) / len(prompts)
    positions = dict(differing)
    agreeing = sum(positions.get(p.name, len(r)) for p, r in zip(problems.problems, reference, strict=True))
    longer = sum(max(len(r), len(s)) for r, s in zip(reference, served, strict=True))
    assert result.token_agreement == pytest.approx(agreeing / longer)
    assert f"first difference: {differing[0][0]} at reference token {differing[0][1]}" in result.summary()


@pytest.mark.slow
def test_served_aqlm_agrees_with_transformers(tiny_model: Path, tmp_path: Path) -> None:
    folder = quantize(str(tiny_model), CHEAP_AQLM, tmp_path / "aqlm", progress=False)
    result = check_agreement(str(folder), load_benchmark("humaneval", limit=3), max_new_tokens=TOKENS)
    assert result.server == "codequant"
    assert result.first_difference is None, result.summary()
    assert result.token_agreement == 1.0 and result.verdict_agreement == 1.0


def test_the_study_option_writes_the_check_and_fails_a_variant_that_disagrees(
    tiny_model: Path, perturbed_model: Path, tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = parse_study(
        f"name: agree\noutput_dir: {tmp_path}\nmodels:\n  - name: tiny\n    builtin: {{kind: tiny-code}}\n"
        "    variants: [{name: fp32, method: baseline}]\nbenchmarks: [{name: humaneval, limit: 3}]\n"
        "serving: {agreement: {problems: 3, max_new_tokens: 48}}\n"
    )
    plan = plan_study(study)
    [written] = check_study_variant(plan, plan.variants[0], str(tiny_model))
    assert written == tmp_path / "agreement" / "tiny" / "fp32" / "humaneval.json"
    saved = json.loads(written.read_text())
    assert saved["problems"] == 3 and saved["token_agreement"] == 1.0 and saved["first_difference"] is None
    # A server that decodes other weights than the folder holds: the variant fails, naming where.
    import codequant_serving.agreement as agreement

    real = agreement.compare_served
    monkeypatch.setattr(
        agreement,
        "compare_served",
        lambda request, url=None: real(request.model_copy(update={"model": str(perturbed_model)}), server),
    )
    with pytest.raises(Exception, match=r"serving agreement below 100%.*first difference: HumanEval_"):
        check_study_variant(plan, plan.variants[0], str(tiny_model))


def test_the_command_checks_a_running_server_and_refuses_a_folder_without_a_model(
    tiny_model: Path, server: str, tmp_path: Path
) -> None:
    out = tmp_path / "agreement.json"
    done = codequant(
        "agreement", "--model", tiny_model, "--url", server, "--limit", "2", "--max-new-tokens", "24", "--out", out,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2/2 completions identical" in done.stdout and json.loads(out.read_text())["token_agreement"] == 1.0
    refused = codequant_in_process("agreement", "--model", tmp_path)
    assert refused.returncode == 2 and f"--model {tmp_path}: not a model folder" in refused.stderr
