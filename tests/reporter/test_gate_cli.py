"""`codequant gate` and `codequant compare --margin` on result files laid out as a study writes them
(`results/MODEL/VARIANT/BENCHMARK.jsonl`, exported by the orchestrator from a real store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codequant.store import Store
from codequant.study import parse_study
from codequant_orchestrator.plan import plan_study
from codequant_orchestrator.stages import export_results
from tests.cli import codequant, codequant_in_process
from tests.reporter.synthetic import SPEC, write_study


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic study's per-sample result files, written by the same export a study run uses."""
    out = tmp_path_factory.mktemp("study")
    spec = SPEC + f"output_dir: {out}\n"
    store = Store(f"sqlite:///{out / 'store.db'}")
    write_study(store, spec=spec)
    plan = plan_study(parse_study(spec))
    for variant in plan.variants:
        if variant.model.name == "Coder-7B":
            for benchmark in plan.benchmarks:
                export_results(store, plan, variant, benchmark)
    return out / "results" / "Coder-7B"


def _gate(results: Path, variant: str, *args: str) -> tuple[int, str, str]:
    done = codequant("gate", "--baseline", results / "fp16", results / variant, *args, timeout=180)
    return done.returncode, done.stdout, done.stderr


def test_exit_0_only_when_non_inferior_on_every_benchmark(results: Path) -> None:
    code, out, err = _gate(results, "aqlm-8bit", "--margin", "40")
    assert code == 0, out + err
    lines = out.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("PASS aqlm-8bit on ") for line in lines[:4])
    assert lines[-1] == "gate passed: 4 of 4 non-inferior"


def test_exit_1_when_a_drop_is_shown_or_the_data_cannot_tell(results: Path) -> None:
    code, out, _ = _gate(results, "aqlm-2bit", "--margin", "2")
    assert code == 1 and out.count("FAIL aqlm-2bit on ") == 4 and "drop shown" in out
    code, out, _ = _gate(results, "aqlm-8bit", "--margin", "2", "--json")
    payload = json.loads(out)
    assert code == 1 and payload["passed"] is False and payload["margin_pp"] == 2
    verdicts = {row["benchmark"]: row["noninferiority"]["verdict"] for row in payload["comparisons"]}
    assert set(verdicts) == {"multiple-humaneval-py", "multiple-humaneval-java", "mceval-python", "mceval-java"}
    # 10-12 problems x 6 samples: the synthetic draws differ by chance in both directions, and 2 pp is out of reach.
    assert "inconclusive" in verdicts.values() and set(verdicts.values()) <= {
        "inconclusive",
        "drop shown",
        "non-inferior",
    }
    assert all(row["detectable_drop_pp"] > 2 for row in payload["comparisons"])
    code, out, _ = _gate(results, "aqlm-8bit", "--margin", "2")
    assert "this study could detect drops of ≥" in out


def test_a_benchmark_the_baseline_never_passes_is_uninformative_and_fails_the_gate(tmp_path: Path) -> None:
    """The baseline passes nothing on one benchmark (as rtn-2bit's baseline on mceval-java in the demo): the
    variant cannot show a drop there, so that benchmark fails the gate with its reason, in text and JSON; compare
    prints the same verdict."""

    def records(passes: dict[str, int]) -> str:
        return "".join(
            json.dumps({"name": f"p{i}", "sample": s, "passed": s < passes[bench], "benchmark": bench}) + "\n"
            for bench in passes
            for i in range(20)
            for s in range(4)
        )

    (tmp_path / "base.jsonl").write_text(records({"never": 0, "always": 4}))
    (tmp_path / "var.jsonl").write_text(records({"never": 0, "always": 4}))
    done = codequant(
        "gate", "--baseline", tmp_path / "base.jsonl", tmp_path / "var.jsonl", "--margin", "2", timeout=180
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    assert lines["FAIL var on never"].startswith("uninformative: the baseline passes nothing, so no drop can be seen")
    assert lines["PASS var on always"].startswith("non-inferior: ")
    assert lines["gate failed"] == "1 of 2 non-inferior"
    as_json = codequant(
        "gate", "--baseline", tmp_path / "base.jsonl", tmp_path / "var.jsonl", "--margin", "2", "--json", timeout=180
    )
    payload = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and payload["passed"] is False
    never = next(row for row in payload["comparisons"] if row["benchmark"] == "never")
    assert (
        never["passes"] is False and never["noninferiority"]["verdict"] == "uninformative: the baseline passes nothing"
    )
    assert never["reason"].startswith("uninformative")
    compared = codequant(
        "compare", "--baseline", tmp_path / "base.jsonl", tmp_path / "var.jsonl", "--margin", "2", "--json", timeout=180
    )
    verdicts = {r["labels"]["benchmark"]: r["noninferiority"]["verdict"] for r in json.loads(compared.stdout)}
    assert verdicts == {"never": "uninformative: the baseline passes nothing", "always": "non-inferior"}


def test_exit_2_for_bad_input(results: Path, tmp_path: Path) -> None:
    assert codequant_in_process("gate", "--baseline", results / "fp16", results / "aqlm-8bit").returncode == 2
    bad_margin = codequant_in_process("gate", "--baseline", results / "fp16", results / "aqlm-8bit", "--margin", "0")
    assert bad_margin.returncode == 2 and "--margin" in bad_margin.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"name": "x", "sample": 0, "passed": true}\n{"name": \n')
    done = codequant("gate", "--baseline", results / "fp16", broken, "--margin", "2", timeout=60)
    assert done.returncode == 2 and "broken.jsonl" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_compare_with_a_margin_gives_a_verdict_for_every_comparison(results: Path) -> None:
    done = codequant(
        "compare",
        "--baseline",
        results / "fp16",
        results / "aqlm-2bit",
        results / "aqlm-8bit",
        "--margin",
        "2",
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "verdict" in done.stdout and "drop shown" in done.stdout and "inconclusive" in done.stdout
    assert "no significant difference" not in done.stdout
    as_json = codequant(
        "compare", "--baseline", results / "fp16", results / "aqlm-8bit", "--margin", "2", "--json", timeout=180
    )
    rows = json.loads(as_json.stdout)
    assert len(rows) == 4 and all(r["noninferiority"]["margin_pp"] == 2 for r in rows)
