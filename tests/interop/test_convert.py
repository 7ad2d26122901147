"""`codequant convert` on files in MultiPL-E's and EvalPlus's exact formats, and `codequant execute` on them."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import cli

DATA = Path(__file__).parent / "data"
COMPLETIONS = DATA / "multiple" / "humaneval-py-handwritten-0.2-reworded"
RESULTS = DATA / "multiple" / "humaneval-py-handwritten-0.2-reworded-results"
SAMPLES = DATA / "evalplus" / "samples.jsonl"


def codequant(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return cli.codequant(*args, timeout=300)


def ok(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return cli.codequant_ok(*args, timeout=300)


def from_evalplus(source: Path, out: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`codequant convert SOURCE --from evalplus --to jsonl --benchmark humaneval --out OUT` (exit 0 when ``check``)."""
    args = ("convert", source, "--from", "evalplus", "--to", "jsonl", "--benchmark", "humaneval", "--out", out)
    return ok(*args) if check else codequant(*args)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def folder(path: Path) -> dict[str, str]:
    """Each file's decompressed text, by name."""
    return {p.name: gzip.decompress(p.read_bytes()).decode() for p in sorted(path.iterdir())}


def multiple_pass_at_1(path: Path) -> float:
    """Mean pass@1 over a MultiPL-E results folder, by MultiPL-E's pass_k.py rule (status OK and exit code 0)."""
    rates = []
    for text in folder(path).values():
        results = json.loads(text)["results"]
        rates.append(sum(r["status"] == "OK" and r["exit_code"] == 0 for r in results) / len(results))
    return sum(rates) / len(rates)


@pytest.mark.parametrize("experiment", [COMPLETIONS, RESULTS], ids=["completions", "results"])
def test_multiple_folders_round_trip_to_the_same_json_text(experiment: Path, tmp_path: Path) -> None:
    ok("convert", experiment, "--from", "multiple", "--to", "jsonl", "--out", tmp_path / "records.jsonl")
    ok("convert", tmp_path / "records.jsonl", "--from", "jsonl", "--to", "multiple", "--out", tmp_path / "again")
    assert folder(tmp_path / "again") == folder(experiment)  # same keys, order, indentation and values


def test_a_folder_with_results_is_read_for_its_results(tmp_path: Path) -> None:
    """MultiPL-E's evaluator often writes results beside the completions (``--dir X --output-dir X``)."""
    shutil.copytree(COMPLETIONS, tmp_path / "both")
    shutil.copytree(RESULTS, tmp_path / "both", dirs_exist_ok=True)
    ok("convert", tmp_path / "both", "--from", "multiple", "--to", "jsonl", "--out", tmp_path / "r.jsonl")
    statuses = [r["status"] for r in rows(tmp_path / "r.jsonl")]
    assert statuses == ["OK", "Exception", "SyntaxError", "OK", "Exception", "Exception"]


def test_imported_records_name_problem_sample_and_outcome(tmp_path: Path) -> None:
    ok("convert", RESULTS, "--from", "multiple", "--to", "jsonl", "--out", tmp_path / "results.jsonl")
    records = rows(tmp_path / "results.jsonl")
    assert [(r["name"], r["sample"], r["status"], r["passed"]) for r in records] == [
        ("HumanEval_23_strlen", 0, "OK", True),
        ("HumanEval_23_strlen", 1, "Exception", False),
        ("HumanEval_23_strlen", 2, "SyntaxError", False),
        ("HumanEval_85_add", 0, "OK", True),
        ("HumanEval_85_add", 1, "Exception", False),
        ("HumanEval_85_add", 2, "Exception", False),
    ]
    first = records[0]
    assert first["benchmark"] == "multiple-humaneval-py" and first["language"] == "python"
    assert (first["temperature"], first["top_p"], first["max_tokens"]) == (0.2, 0.95, 512)
    assert first["completion"] == "    return len(string)\n"  # cut out of the program


def test_imported_completions_execute_as_multiple_recorded(tmp_path: Path) -> None:
    ok("convert", COMPLETIONS, "--from", "multiple", "--to", "jsonl", "--out", tmp_path / "completions.jsonl")
    ok("execute", tmp_path / "completions.jsonl", "--out", tmp_path / "executed.jsonl", "--workers", "2")
    executed = rows(tmp_path / "executed.jsonl")
    assert [r["status"] for r in executed] == ["OK", "Failure", "SyntaxError", "OK", "Failure", "Failure"]
    # Exported, our results carry MultiPL-E's statuses: what MultiPL-E itself recorded for these completions.
    ok("convert", tmp_path / "executed.jsonl", "--from", "jsonl", "--to", "multiple", "--out", tmp_path / "ours")
    ours, theirs = folder(tmp_path / "ours"), folder(RESULTS)
    assert ours.keys() == theirs.keys()
    for name in ours:
        mine, upstream = json.loads(ours[name]), json.loads(theirs[name])
        assert [(r["program"], r["status"], r["exit_code"]) for r in mine["results"]] == [
            (r["program"], r["status"], r["exit_code"]) for r in upstream["results"]
        ]
        assert {k: v for k, v in mine.items() if k != "results"} == {
            k: v for k, v in upstream.items() if k != "results"
        }


def test_exported_results_give_compares_pass_at_1(tmp_path: Path) -> None:
    """MultiPL-E's published results as the baseline of `codequant compare`, and our own results exported back:
    pass@1 by MultiPL-E's rule on the exported folder is compare's pass@1."""
    ok("convert", COMPLETIONS, "--from", "multiple", "--to", "jsonl", "--out", tmp_path / "completions.jsonl")
    # One sample of HumanEval_23 replaced so that our run differs from MultiPL-E's recorded one.
    records = rows(tmp_path / "completions.jsonl")
    records[1]["completion"] = "    return len(string)\n"
    (tmp_path / "completions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    ok("execute", tmp_path / "completions.jsonl", "--out", tmp_path / "executed.jsonl", "--workers", "2")
    ok("convert", tmp_path / "executed.jsonl", "--from", "jsonl", "--to", "multiple", "--out", tmp_path / "ours")
    ok("convert", RESULTS, "--from", "multiple", "--to", "jsonl", "--out", tmp_path / "published.jsonl")
    report = ok("compare", "--baseline", tmp_path / "published.jsonl", tmp_path / "executed.jsonl", "--json")
    [comparison] = json.loads(report.stdout)
    assert comparison["pass_at_k"]["pass@1"] == pytest.approx(multiple_pass_at_1(tmp_path / "ours"))
    assert comparison["baseline_pass_at_k"]["pass@1"] == pytest.approx(multiple_pass_at_1(RESULTS))
    assert comparison["pass_at_k"]["pass@1"] == pytest.approx(0.5) and comparison["table"]["variant_only"] == 1


def test_evalplus_samples_import_execute_and_export(tmp_path: Path) -> None:
    from_evalplus(SAMPLES, tmp_path / "s.jsonl")
    records = rows(tmp_path / "s.jsonl")
    assert [(r["name"], r["sample"], r["task_id"]) for r in records] == [
        ("HumanEval_23_strlen", 0, "HumanEval/23"),
        ("HumanEval_23_strlen", 1, "HumanEval/23"),
        ("HumanEval_85_add", 0, "HumanEval/85"),
        ("HumanEval_85_add", 1, "HumanEval/85"),
    ]
    ok("execute", tmp_path / "s.jsonl", "--out", tmp_path / "executed.jsonl", "--workers", "2")
    assert [r["status"] for r in rows(tmp_path / "executed.jsonl")] == ["OK", "Failure", "OK", "Failure"]
    ok("convert", tmp_path / "executed.jsonl", "--from", "jsonl", "--to", "evalplus", "--out", tmp_path / "back.jsonl")
    samples = [json.loads(line) for line in SAMPLES.read_text().splitlines()]
    exported = rows(tmp_path / "back.jsonl")
    # The benchmark is kept where the task id would name another (HumanEval/ means humaneval-plus to EvalPlus).
    assert [set(s) for s in exported] == [{"task_id", "solution", "benchmark"}] * 4
    for original, record, back in zip(samples, records, exported, strict=True):
        # EvalPlus runs a completion after its prompt: the exported solution is that program.
        expected = original.get("solution") or record["prompt"] + original["completion"]
        assert back == {"task_id": original["task_id"], "solution": expected, "benchmark": "humaneval"}


def test_generate_records_export_with_their_benchmarks_problem(tmp_path: Path) -> None:
    """Records as `codequant generate` writes them (no tests) get the problem's fields from their benchmark."""
    generated = [
        {"name": "HumanEval_23_strlen", "benchmark": "humaneval", "language": "python", "sample": s, "completion": c}
        | {"prompt": 'def strlen(string: str) -> int:\n    """ Return length of given string\n'}
        | {"temperature": 0.2, "top_p": 0.95, "max_tokens": 64}
        for s, c in enumerate(["    return len(string)\n", "    return 0\n"])
    ]
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in generated))
    ok("convert", tmp_path / "g.jsonl", "--from", "jsonl", "--to", "multiple", "--out", tmp_path / "exp")
    data = json.loads(folder(tmp_path / "exp")["HumanEval_23_strlen.json.gz"])
    header = ["name", "language", "temperature", "top_p", "max_tokens", "prompt", "tests"]
    # completions.py's key order; then the benchmark, which MultiPL-E's HumanEval_ name would not say
    assert list(data) == [*header, "completions", "stop_tokens", "benchmark"] and data["benchmark"] == "humaneval"
    assert data["language"] == "py" and data["tests"].rstrip().endswith("check(strlen)")
    assert data["completions"] == ["    return len(string)\n", "    return 0\n"]
    ok("convert", tmp_path / "g.jsonl", "--from", "jsonl", "--to", "evalplus", "--out", tmp_path / "samples.jsonl.gz")
    exported = [json.loads(line) for line in gzip.decompress((tmp_path / "samples.jsonl.gz").read_bytes()).splitlines()]
    assert [s["task_id"] for s in exported] == ["HumanEval/23"] * 2


def corrupt(tmp_path: Path, name: str, data: bytes) -> Path:
    experiment = tmp_path / "in"
    shutil.copytree(COMPLETIONS, experiment)
    (experiment / name).write_bytes(data)
    return experiment


def without(key: str) -> bytes:
    data = json.loads(gzip.decompress((COMPLETIONS / "HumanEval_85_add.json.gz").read_bytes()))
    del data[key]
    return gzip.compress(json.dumps(data).encode())


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("HumanEval_85_add.json.gz", b"not gzip at all", "HumanEval_85_add.json.gz: not a readable gzip file"),
        ("HumanEval_85_add.json.gz", gzip.compress(b'{"name": ')[:-6], "HumanEval_85_add.json.gz: not a readable"),
        ("HumanEval_85_add.json.gz", gzip.compress(b'{"name": '), "HumanEval_85_add.json.gz: invalid JSON"),
        ("HumanEval_85_add.json.gz", without("tests"), "HumanEval_85_add.json.gz: field 'tests': expected a str"),
        ("HumanEval_85_add.json.gz", without("completions"), "field 'completions': expected a list, got missing"),
    ],
    ids=["not-gzip", "truncated-gzip", "bad-json", "no-tests", "no-completions"],
)
def test_bad_multiple_files_name_file_and_field_and_write_nothing(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    experiment = corrupt(tmp_path, name, data)
    for target, out in (("jsonl", tmp_path / "out.jsonl"), ("multiple", tmp_path / "out")):
        result = codequant("convert", experiment, "--from", "multiple", "--to", target, "--out", out)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no output, no temporary left


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"solution": "pass"}', ":2: field 'task_id'"),
        ('{"task_id": "HumanEval/23"}', ":2: field 'solution': missing"),
        ('{"task_id": "HumanEval/999", "solution": "pass"}', ":2: field 'task_id': no problem 'HumanEval/999'"),
        ("{not json", ":2: invalid JSON"),
    ],
)
def test_bad_evalplus_samples_name_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    source = tmp_path / "samples.jsonl"
    source.write_text(SAMPLES.read_text().splitlines()[0] + "\n" + line + "\n")
    out = tmp_path / "out.jsonl"
    result = from_evalplus(source, out, check=False)
    assert result.returncode == 2 and f"{source}{message}" in result.stderr, result.stderr
    assert not out.exists()


def test_export_refuses_a_folder_with_files_and_bad_formats(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = codequant("convert", COMPLETIONS, "--from", "multiple", "--to", "multiple", "--out", tmp_path / "taken")
    assert result.returncode == 2 and "exists and is not an empty folder" in result.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    result = codequant("convert", COMPLETIONS, "--from", "multiple", "--to", "evalplus", "--out", tmp_path / "taken")
    assert result.returncode == 2 and "is a folder; --to evalplus writes a file" in result.stderr
    result = codequant("convert", SAMPLES, "--from", "humaneval", "--to", "jsonl", "--out", tmp_path / "x.jsonl")
    assert result.returncode == 2 and "'humaneval' is not one of 'jsonl', 'multiple', 'evalplus'" in result.stderr


def test_a_repeated_sample_is_refused(tmp_path: Path) -> None:
    ok("convert", COMPLETIONS, "--from", "multiple", "--to", "jsonl", "--out", tmp_path / "c.jsonl")
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    (tmp_path / "twice.jsonl").write_text("\n".join([*lines, lines[1]]) + "\n")
    result = codequant(
        "convert", tmp_path / "twice.jsonl", "--from", "jsonl", "--to", "multiple", "--out", tmp_path / "o"
    )
    assert (
        result.returncode == 2
        and "twice.jsonl:7: field 'sample': HumanEval_23_strlen sample 1 repeats" in result.stderr
    )
    assert not (tmp_path / "o").exists()


def test_evalplus_eval_results_are_a_baseline_for_our_execution(tmp_path: Path) -> None:
    results = DATA / "evalplus" / "samples_eval_results.json"
    from_evalplus(results, tmp_path / "r.jsonl")
    imported = rows(tmp_path / "r.jsonl")
    assert [(r["name"], r["sample"], r["status"], r["passed"]) for r in imported] == [
        ("HumanEval_23_strlen", 0, "OK", True),
        ("HumanEval_23_strlen", 1, "Failure", False),
        ("HumanEval_85_add", 0, "OK", True),
        ("HumanEval_85_add", 1, "Failure", False),
    ]
    from_evalplus(SAMPLES, tmp_path / "s.jsonl")
    ok("execute", tmp_path / "s.jsonl", "--out", tmp_path / "ours.jsonl", "--workers", "2")
    report = ok("compare", "--baseline", tmp_path / "r.jsonl", tmp_path / "ours.jsonl", "--json")
    [comparison] = json.loads(report.stdout)
    published = json.loads(results.read_text())["pass_at_k"]["base"]["pass@1"]
    assert comparison["baseline_pass_at_k"]["pass@1"] == comparison["pass_at_k"]["pass@1"] == published
    assert comparison["table"] == {"both": 2, "baseline_only": 0, "variant_only": 0, "neither": 2}


def test_evalplus_eval_results_without_verdicts_are_refused(tmp_path: Path) -> None:
    data = json.loads((DATA / "evalplus" / "samples_eval_results.json").read_text())
    del data["eval"]["HumanEval/85"][1]["base_status"]
    (tmp_path / "x_eval_results.json").write_text(json.dumps(data))
    out = tmp_path / "out.jsonl"
    result = from_evalplus(tmp_path / "x_eval_results.json", out, check=False)
    assert result.returncode == 2 and "eval['HumanEval/85'][1]: field 'base_status'" in result.stderr, result.stderr
    assert not out.exists()


@pytest.mark.parametrize("via", ["multiple", "evalplus"])
def test_a_round_trip_keeps_the_benchmark_and_compare_pairs_with_the_original(tmp_path: Path, via: str) -> None:
    from_evalplus(SAMPLES, tmp_path / "s.jsonl")  # humaneval records, named like MultiPL-E's HumanEval
    ok("execute", tmp_path / "s.jsonl", "--out", tmp_path / "e.jsonl", "--workers", "2")
    out = tmp_path / ("exported" if via == "multiple" else "exported.jsonl")
    ok("convert", tmp_path / "e.jsonl", "--from", "jsonl", "--to", via, "--out", out)
    back = ok("convert", out, "--from", via, "--to", "jsonl", "--out", tmp_path / "back.jsonl")
    assert "note:" not in back.stderr  # nothing inferred: the files said which benchmark
    assert {r["benchmark"] for r in rows(tmp_path / "back.jsonl")} == {"humaneval"}
    if via == "evalplus":  # samples come back as completions to execute
        ok("execute", tmp_path / "back.jsonl", "--out", tmp_path / "back.e.jsonl", "--workers", "2")
    executed = tmp_path / ("back.jsonl" if via == "multiple" else "back.e.jsonl")
    report = ok("compare", "--baseline", tmp_path / "e.jsonl", executed, "--json")
    [comparison] = json.loads(report.stdout)
    assert comparison["labels"] == {"benchmark": "humaneval"} and comparison["table"]["baseline_only"] == 0
    assert comparison["pass_at_k"]["pass@1"] == comparison["baseline_pass_at_k"]["pass@1"] == 0.5


def test_a_benchmark_inferred_from_problem_names_is_said(tmp_path: Path) -> None:
    result = ok("convert", COMPLETIONS, "--from", "multiple", "--to", "jsonl", "--out", tmp_path / "c.jsonl")
    assert "note: records read as benchmark multiple-humaneval-py, from MultiPL-E's problem names" in result.stderr
    chosen = ok(
        "convert", COMPLETIONS, "--from", "multiple", "--to", "jsonl", "--out", tmp_path / "h.jsonl", "--benchmark",
        "humaneval",
    )  # fmt: skip
    assert "note:" not in chosen.stderr and {r["benchmark"] for r in rows(tmp_path / "h.jsonl")} == {"humaneval"}


def test_evalplus_task_ids_without_a_benchmark_say_which_tests_they_get(tmp_path: Path) -> None:
    result = codequant("convert", SAMPLES, "--from", "evalplus", "--to", "jsonl", "--out", tmp_path / "s.jsonl")
    if result.returncode == 0:  # this machine has HumanEval+'s data
        assert "note: records read as benchmark humaneval-plus, from EvalPlus's task ids" in result.stderr
    else:
        assert result.returncode == 2 and "humaneval-plus cannot be loaded" in result.stderr
        assert "HumanEval/ task ids are read as humaneval-plus by default (--benchmark humaneval" in result.stderr
        assert not (tmp_path / "s.jsonl").exists()
