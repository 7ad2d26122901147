"""Every bad invocation of every command: one line on stderr naming what is wrong, exit code 2, no traceback,
nothing written, before any work starts (so the table runs in this process, without torch, in milliseconds)."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.cli import codequant_in_process

RECORD = {"name": "HumanEval_0_has_close_elements", "benchmark": "humaneval", "sample": 0, "completion": "  pass\n"}
GENERATE = ["generate", "--endpoint", "http://127.0.0.1:9", "--benchmark", "humaneval", "--out", "{out}"]
QUANTIZE = ["quantize", "--model", "{dir}", "--out", "{out}"]
COMPARE = ["compare", "--baseline", "{records}", "{records}"]

# (command line, exit code, a fragment of the one error line). Placeholders: {out} a path that must stay absent,
# {dir} an existing folder, {missing} a path that does not exist, {empty} an empty file, {records} a JSONL file
# with one completion, {config} a model config.json, {study} a study file.
CASES: list[tuple[list[str], int, str]] = [
    (["nosuch"], 2, "No such command 'nosuch'"),
    (["execute", "--zz"], 2, "No such option: --zz"),
    (["validate", "{missing}"], 2, "file not found"),
    (["benchmarks", "list", "--source", "web"], 2, "'web' is not one of 'auto', 'local', 'hub'"),
    (["benchmarks", "list", "--data-dir", "{missing}"], 2, "does not exist"),
    (["benchmarks", "export", "nope", "--out", "{out}"], 2, "unknown benchmark 'nope'"),
    (["benchmarks", "export", "humaneval", "--out", "{out}", "--limit", "0"], 2, "--limit"),
    (["convert", "{records}", "--from", "csv", "--to", "jsonl", "--out", "{out}"], 2, "'csv' is not one of"),
    (["convert", "{empty}", "--from", "jsonl", "--to", "jsonl", "--out", "{out}"], 2, "no records"),
    (["convert", "{missing}", "--from", "jsonl", "--to", "jsonl", "--out", "{out}"], 2, "does not exist"),
    (["convert", "{records}", "--from", "jsonl", "--to", "multiple", "--out", "{out}", "--benchmark", "x"], 2, "'x'"),
    (["execute", "{records}", "--out", "{out}", "--workers", "abc"], 2, "valid integer, unable to parse"),
    (["execute", "{records}", "--out", "{out}", "--workers", "0"], 2, "'--workers': Input should be greater"),
    (["execute", "{records}", "--out", "{out}", "--timeout", "0"], 2, "'--timeout': must be above 0"),
    (["execute", "{records}", "--out", "{out}", "--memory-mb", "1"], 2, "--memory-mb: memory_mb must be"),
    (["execute", "{empty}", "--out", "{out}"], 2, "no records (the file is empty)"),
    (["execute", "{missing}", "--out", "{out}"], 2, "does not exist"),
    ([*QUANTIZE, "--method", "nosuch"], 2, "'nosuch' is not one of 'aqlm', 'rtn'"),
    (["quantize", "--model", "./no/such/model", "--out", "{out}"], 2, "no such file or folder: ./no/such/model"),
    ([*QUANTIZE, "--method", "rtn", "--bits", "0"], 2, "--bits"),
    ([*QUANTIZE, "--method", "rtn", "--num-codebooks", "2"], 2, "--num-codebooks does not apply to --method rtn"),
    ([*QUANTIZE, "--device", "tpu"], 2, "must be cpu, cuda or cuda:N, got 'tpu'"),
    ([*QUANTIZE, "--offload", "gpu"], 2, "'gpu' is not one of"),
    ([*QUANTIZE, "--gpu-memory-gb", "-1"], 2, "'--gpu-memory-gb': must be above 0"),
    (["quantize", "--model", "{dir}", "--method", "rtn", "--bits", "4"], 2, "--out is required"),
    (["footprint", "--config", "{config}", "--method", "fp99"], 2, "'fp99' is not one of"),
    (["footprint", "--config", "{config}", "--method", "bf16", "--dtype", "fp16"], 2, "but --dtype says fp16"),
    (["footprint", "--config", "{config}", "--dtype", "int3"], 2, "'int3' is not one of"),
    (["footprint", "--model", "{dir}", "--method", "rtn"], 2, "a --model folder is measured"),
    (["footprint"], 2, "give exactly one of --model and --config"),
    (["serve", "--model", "{missing}/model"], 2, "no such folder"),
    (["serve", "--model", "./model-folder-that-is-not-here"], 2, "no such folder"),
    (["serve", "--model", "{records}"], 2, "is not a folder"),
    (["serve", "--model", "{dir}", "--port", "70000"], 2, "'--port': Input should be less than or equal to 65535"),
    (["serve", "--model", "{dir}", "--max-batch-size", "0"], 2, "--max-batch-size"),
    (["serve", "--model", "{dir}", "--dtype", "int4"], 2, "'int4' is not one of"),
    (["serve", "--model", "{dir}", "--threads", "0"], 2, "--threads"),
    ([*GENERATE, "--n", "0"], 2, "'--n': Input should be greater than or equal to 1"),
    ([*GENERATE, "--limit", "0"], 2, "'--limit'"),
    ([*GENERATE, "--api", "grpc"], 2, "'grpc' is not one of 'tgi', 'openai', 'openai-chat'"),
    ([*GENERATE, "--temperature", "-1"], 2, "'--temperature'"),
    ([*GENERATE, "--top-p", "0"], 2, "'--top-p': must be above 0 and at most 1"),
    ([*GENERATE, "--top-p", "1.5"], 2, "'--top-p': must be above 0 and at most 1"),
    ([*GENERATE, "--max-new-tokens", "0"], 2, "'--max-new-tokens'"),
    ([*GENERATE, "--request-timeout", "0"], 2, "'--request-timeout': must be above 0"),
    ([*GENERATE, "--retries", "0"], 2, "'--retries'"),
    ([*GENERATE, "--concurrency", "0"], 2, "'--concurrency'"),
    ([*GENERATE, "--max-concurrency", "0"], 2, "'--max-concurrency'"),
    ([*GENERATE, "--samples-per-request", "0"], 2, "'--samples-per-request'"),
    ([*GENERATE, "--seed", "-1"], 2, "'--seed'"),
    ([*GENERATE, "--problems", ","], 2, "--problems: no problem names"),
    ([*GENERATE, "--problems", "HumanEval_999_nope"], 2, "unknown problem(s) HumanEval_999_nope"),
    ([*GENERATE, "--prompt-mode", "chat"], 2, "'chat' is not one of 'completion', 'instruct'"),
    ([*GENERATE, "--prompt-mode", "instruct"], 2, "--prompt-mode instruct needs the chat API"),
    ([*GENERATE, "--header-env", "X-Org"], 2, "--header-env must be NAME=VARIABLE"),
    ([*GENERATE, "--api-key-env", "CQ_TEST_UNSET_VARIABLE"], 2, "CQ_TEST_UNSET_VARIABLE is not set"),
    (["generate", "--endpoint", "http://127.0.0.1:9", "--benchmark", "nope", "--out", "{out}"], 2, "'nope'"),
    (["generate", "--endpoint", "http://127.0.0.1:9", "--benchmark", "humaneval", "--out", "{dir}"], 2, "directory"),
    (["tiny-model", "--out", "{out}", "--profile", "huge"], 2, "'huge' is not one of 'full', 'test'"),
    (["tiny-model", "--out", "{out}", "--seed", "-1"], 2, "'--seed'"),
    (["tiny-model", "--out", "{out}", "--profile", "test", "--verify"], 2, "only the shipped build (profile full"),
    (["tiny-model", "--out", "{dir}/..", "--verify"], 2, "--verify trains a fresh build: --out"),
    (["tiny-model", "--out", "{study}/..", "--verify"], 2, "cannot write in"),
    (["tiny-model", "--out", "{study}"], 2, "is a file"),
    (["compare", "--baseline", "{empty}", "{empty}"], 2, "no records (the file is empty)"),
    (["compare", "--baseline", "{missing}", "{records}"], 2, "does not exist"),
    ([*COMPARE, "--k", "0"], 2, "--k: pass@k needs k >= 1"),
    ([*COMPARE, "--k", "a"], 2, "--k: expected comma-separated integers"),
    ([*COMPARE, "--alpha", "1.5"], 2, "'--alpha': must be above 0 and below 1"),
    ([*COMPARE, "--correction", "holm"], 2, "'holm' is not one of"),
    ([*COMPARE, "--bootstrap", "10"], 2, "'--bootstrap'"),
    ([*COMPARE, "--margin", "0"], 2, "'--margin': percentage points above 0 and below 100, got 0"),
    (["gate", "--baseline", "{records}", "{records}"], 2, "Missing option '--margin'"),
    (["gate", "--baseline", "{records}", "{records}", "--margin", "100"], 2, "'--margin': percentage points"),
    (["gate", "--baseline", "{records}", "{records}", "--margin", "2", "--alpha", "0.7"], 2, "'--alpha': a one-sided"),
    (["gate", "--baseline", "{missing}", "{records}", "--margin", "2"], 2, "does not exist"),
    (["agreement", "--model", "{dir}"], 2, "not a model folder (no config.json)"),
    (["agreement", "--model", "{dir}", "--limit", "0"], 2, "'--limit'"),
    (["agreement", "--model", "{dir}", "--max-new-tokens", "0"], 2, "'--max-new-tokens'"),
    (["agreement", "--model", "{dir}", "--server", "tgi"], 2, "'tgi' is not one of 'codequant', 'vllm'"),
    (["plan", "--margin", "2"], 2, "give either --baseline"),
    (["plan", "--margin", "2", "--pass-rate", "0.5"], 2, "--pass-rate needs --problems and --n"),
    (["plan", "--margin", "2", "--pass-rate", "1.5", "--problems", "9", "--n", "5"], 2, "'--pass-rate'"),
    (["report", "{dir}", "--out", "{out}", "--format", "pdf"], 2, "comma-separated list of md, html"),
    (["report", "{dir}", "--out", "{out}", "--export", "neptune"], 2, "'neptune' is not one of 'mlflow', 'wandb'"),
    (["run", "{missing}"], 2, "does not exist"),
    (["run", "{study}", "--device", "tpu"], 2, "must be cpu, cuda or cuda:N"),
    (["status", "{dir}"], 2, "no results store holds study"),
    (["worker", "nosuch"], 2, "unknown queue 'nosuch'"),
    (["worker", "execute", "--concurrency", "0"], 2, "'--concurrency'"),
    (["worker", "execute", "--loglevel", "LOUD"], 2, "'LOUD' is not one of"),
    (["api", "--port", "-1"], 2, "'--port'"),
    (["api", "--device", "tpu"], 2, "must be cpu, cuda or cuda:N"),
    (["api", "--host", "0.0.0.0"], 2, "without API tokens"),
    (["api-token", "alice"], 2, "give --file or set $CODEQUANT_API_TOKENS_FILE"),
    (["api-token", "alice", "--file", "{dir}"], 2, "cannot read the API tokens file"),
]


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CODEQUANT_STORE_URL", raising=False)
    monkeypatch.delenv("CQ_TEST_UNSET_VARIABLE", raising=False)
    for variable in ("CODEQUANT_API_TOKEN", "CODEQUANT_API_TOKENS_FILE"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "records.jsonl").write_text(json.dumps(RECORD) + "\n")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "study.yaml").write_text("name: s\n")
    return {
        "out": tmp_path / "out" / "result.jsonl",
        "dir": tmp_path / "folder",
        "missing": tmp_path / "missing",
        "empty": tmp_path / "empty.jsonl",
        "records": tmp_path / "records.jsonl",
        "config": tmp_path / "config.json",
        "study": tmp_path / "study.yaml",
    }


@pytest.mark.parametrize(("line", "code", "fragment"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_a_bad_invocation_is_one_line_and_writes_nothing(
    places: dict[str, Path], tmp_path: Path, line: list[str], code: int, fragment: str
) -> None:
    before = sorted(tmp_path.rglob("*"))
    result = codequant_in_process(*(part.format(**places) for part in line))
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout and not result.stdout
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even --out's folder


def test_every_command_has_a_bad_invocation_in_the_table() -> None:
    from codequant.cli import _load_plugins, app

    _load_plugins()
    commands = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    commands |= {g.name for g in app.registered_groups}
    tried = {line[0] for line, _, _ in CASES}
    assert commands <= tried, f"no bad invocation of {sorted(commands - tried)}"
    assert {ep.name for ep in entry_points(group="codequant.cli")} >= {"shared", "generator", "serving"}


@pytest.mark.parametrize("line", [[], ["benchmarks"]], ids=["codequant", "codequant benchmarks"])
def test_a_bare_command_group_prints_its_help_and_exits_2(line: list[str]) -> None:
    result = codequant_in_process(*line)
    assert result.returncode == 2 and "Usage:" in result.stdout and "Commands" in result.stdout
    assert "Traceback" not in result.stderr and not result.stderr.strip()


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("codellama/CodeLlama-7b-hf", False),
        ("gpt2", False),
        ("runs/demo/artifacts/fp32", True),
        ("./fp32", True),
        ("/models/fp32", True),
        ("~/models/fp32", True),
        ("folder/model", True),  # its first part is a folder here
    ],
)
def test_a_model_that_can_only_be_a_path_is_told_from_a_hub_id(places: dict[str, Path], model: str, path: bool) -> None:
    from codequant.option_checks import looks_like_path

    assert looks_like_path(model) is path
