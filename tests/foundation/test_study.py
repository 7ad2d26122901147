"""Study spec: the examples validate, every kind of bad input is reported by field and line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from codequant.study import StudyError, load_study, parse_study
from codequant.study.presets import AQLM_PRESETS
from tests.cli import codequant

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))

MINIMAL = """\
name: s
models:
  - name: m
    hub_id: org/model
    variants:
      - {name: fp16, method: baseline}
      - {name: q, method: aqlm, preset: aqlm-2bit}
benchmarks: [mceval-java]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(StudyError) as info:
        parse_study(text, source="s.yaml")
    return info.value.problems


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    study = load_study(path)
    assert study.models and study.benchmarks


def test_paper_rq1_mirrors_the_reference_design() -> None:
    study = load_study(REPO / "examples" / "paper-rq1.yaml")
    assert [m.hub_id for m in study.models] == ["codellama/CodeLlama-7b-hf", "deepseek-ai/deepseek-coder-6.7b-base"]
    bits = sorted(v.nominal_bits for v in study.models[0].variants if v.method == "aqlm")
    assert bits == [1.875, 3.0, 3.75, 7.5]
    labels = [v.precision_label("float16") for v in study.models[0].variants]
    assert labels == ["fp16", "8-bit AQLM 4x15", "4-bit AQLM 2x15", "3-bit AQLM 2x12", "2-bit AQLM 1x15"]
    assert study.sampling.n == 20 and study.sampling.temperature == 0.2
    assert study.max_new_tokens("mceval-java") == 1500 and study.max_new_tokens("multiple-humaneval-py") == 1024
    assert next(b for b in study.benchmarks if b.name == "mceval-python").exclude_humaneval_overlap


def test_presets_expand_to_the_papers_settings() -> None:
    study = parse_study(MINIMAL)
    variant = study.models[0].variants[1]
    assert (variant.num_codebooks, variant.nbits_per_codebook, variant.in_group_size, variant.out_group_size) == (
        1,
        15,
        8,
        1,
    )
    assert AQLM_PRESETS["aqlm-8bit"]["num_codebooks"] == 4 and AQLM_PRESETS["aqlm-3bit"]["nbits_per_codebook"] == 12


@pytest.mark.parametrize(
    ("codes", "label"),
    [
        ("num_codebooks: 1, nbits_per_codebook: 8, in_group_size: 8", "1-bit AQLM 1x8"),
        ("num_codebooks: 2, nbits_per_codebook: 8, in_group_size: 8", "2-bit AQLM 2x8"),
        ("num_codebooks: 1, nbits_per_codebook: 16, in_group_size: 8", "2-bit AQLM 1x16"),
        ("num_codebooks: 1, nbits_per_codebook: 15, in_group_size: 8, out_group_size: 2", "1-bit AQLM 1x15 g8x2"),
        ("num_codebooks: 2, nbits_per_codebook: 8, in_group_size: 8, calibration: code", "2-bit AQLM 2x8 (code)"),
    ],
)
def test_aqlm_labels_name_code_bits_rounded_up_like_the_paper(codes: str, label: str) -> None:
    text = MINIMAL.replace("{name: q, method: aqlm, preset: aqlm-2bit}", f"{{name: q, method: aqlm, {codes}}}")
    assert parse_study(text).models[0].variants[1].precision_label("float16") == label


def test_defaults_and_variant_keys_are_deterministic() -> None:
    first, second = parse_study(MINIMAL), parse_study(MINIMAL)
    model = first.models[0]
    assert model.variant_key("q") == second.models[0].variant_key("q")
    assert model.variant_key("q") != model.variant_key("fp16")
    assert first.out_dir == Path("runs/s")
    assert first.resolved_store_url.endswith("runs/s/store.db")


def test_endpoint_credentials_are_named_not_stored_and_stay_out_of_variant_keys() -> None:
    plain = "{name: fp16, method: baseline}"
    hosted = "{name: fp16, method: baseline, endpoint: {url: 'https://api.example', api: openai, model: m}}"
    secret = hosted.replace("model: m", "model: m, api_key_env: KEY, headers_env: {X-Org: ORG}, max_concurrency: 2")
    key = parse_study(MINIMAL.replace(plain, hosted)).models[0].variant_key("fp16")
    # The key of an endpoint variant is what it was before credentials and limits existed.
    endpoint = {"url": "https://api.example", "api": "openai", "model": "m"}
    assert parse_study(MINIMAL.replace(plain, hosted)).models[0].variants[0].endpoint.key_config() == endpoint
    assert parse_study(MINIMAL.replace(plain, secret)).models[0].variant_key("fp16") == key
    chat = hosted.replace("api: openai", "api: openai-chat")
    assert parse_study(MINIMAL.replace(plain, chat)).models[0].variant_key("fp16") != key
    literal = hosted.replace("model: m", "model: m, api_key: sk-123")
    assert any("api_key: unknown key" in p for p in problems_of(MINIMAL.replace(plain, literal)))


def test_instruct_mode_travels_in_the_sampling_and_needs_a_chat_api() -> None:
    text = MINIMAL.replace("[mceval-java]", "[humaneval, {name: mceval-java, prompt_mode: instruct}]")
    study = parse_study(text, source="s.yaml")
    assert study.sampling_params("humaneval").prompt_mode == "completion"
    assert study.sampling_params("mceval-java").prompt_mode == "instruct"
    assert study.sampling_params("mceval-java").as_key() != study.sampling_params("humaneval").as_key()
    endpoint = "{name: q, method: rtn, bits: 4, endpoint: {url: 'http://h', api: API}}"
    remote = text.replace("{name: q, method: aqlm, preset: aqlm-2bit}", endpoint)
    assert parse_study(remote.replace("API", "openai"), source="s.yaml")
    problems = problems_of(remote.replace("API", "tgi"))
    assert any("variant m/q: prompt_mode instruct (mceval-java) needs the chat completions API" in p for p in problems)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("benchmarks: [mceval-java]", "benchmarks: [mceval-java]\nsurprise: 1"), "s.yaml:9: surprise: unknown key"),
        (("preset: aqlm-2bit", "preset: aqlm-2bit, bogus: 3"), "models[0].variants[1].bogus: unknown key"),
        (("preset: aqlm-2bit", "preset: aqlm-5bit"), "unknown AQLM preset 'aqlm-5bit'"),
        (("preset: aqlm-2bit", "preset: aqlm-2bit, num_codebooks: 2"), "already sets num_codebooks"),
        (("preset: aqlm-2bit", "num_codebooks: 1"), "missing nbits_per_codebook, in_group_size"),
        (("hub_id: org/model", "path: /no/such/model"), "s.yaml:4: models[0].path: model folder '/no/such/model'"),
        (("hub_id: org/model", "hub_id: org/model\n    path: /tmp"), "give exactly one of hub_id, path, builtin"),
        (("[mceval-java]", "[mceval-java, nope]"), "benchmarks[1].name: unknown benchmark 'nope'"),
        (("[mceval-java]", "[mceval-java, mceval-java]"), "duplicate benchmark names: mceval-java"),
        (("{name: q,", "{name: fp16,"), "duplicate variant names: fp16"),
        (("method: baseline", "method: rtn, bits: 4"), "needs exactly one variant with method: baseline"),
        (("method: aqlm, preset: aqlm-2bit", "method: magic"), "models[0].variants[1]"),
        (("[mceval-java]", "[{name: mceval-java, exclude_humaneval_overlap: true}]"), "applies to mceval-python only"),
        (("[mceval-java]", "[{name: mceval-java, prompt_mode: chat}]"), "benchmarks[0].prompt_mode: Input should be"),
        (("[mceval-java]", "[{name: mceval-java, response_prefix: false}]"), "applies to prompt_mode: instruct only"),
        (
            ("[mceval-java]", "[mceval-java]\nsampling: {n: 0}"),
            "sampling.n: Input should be greater than or equal to 1",
        ),
        (
            ("[mceval-java]", "[mceval-java]\nexecution: {self_check: false, calibration: {factor: 4}}"),
            "calibration measures the reference solutions: it needs self_check: true",
        ),
        (
            ("[mceval-java]", "[mceval-java]\nexecution: {calibration: {factor: 0.5}}"),
            "execution.calibration.factor: Input should be greater than or equal to 1",
        ),
        (
            ("[mceval-java]", "[mceval-java]\nexecution: {flakes: {policy: sometimes}}"),
            "execution.flakes.policy: Input should be 'exclude' or 'rerun'",
        ),
    ],
)
def test_invalid_studies_name_the_field(edit: tuple[str, str], expected: str) -> None:
    text = MINIMAL.replace(*edit)
    assert text != MINIMAL
    problems = problems_of(text)
    assert any(expected in line for line in problems), problems
    assert all(line.startswith("s.yaml") for line in problems)


def test_yaml_syntax_error_names_the_line() -> None:
    problems = problems_of("name: s\nmodels:\n  - name: [unclosed\n")
    assert len(problems) == 1
    assert problems[0].startswith("s.yaml:4: invalid YAML:"), problems


def test_non_mapping_study_is_rejected() -> None:
    assert problems_of("- a\n- b\n") == ["s.yaml:1: a study must be a mapping of fields, got list"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return codequant(*args, timeout=120)


def test_validate_cli_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("validate", *map(str, EXAMPLES))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(": ok (") == len(EXAMPLES)

    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("preset: aqlm-2bit", "preset: aqlm-2bit, bogus: 3") + "extra: 1\n")
    result = run_cli("validate", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {bad}:") for line in lines), lines
    assert "Traceback" not in result.stderr

    missing = run_cli("validate", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 2 and "file not found" in missing.stderr
