"""The study report from a synthetic study in a real store: every table, plot and format."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from codequant.errors import InputError
from codequant.store import Store
from codequant_reporter.report import write_report
from codequant_reporter.study_data import load_study_data
from tests.cli import codequant
from tests.reporter.synthetic import SPEC, write_study


def make_study_dir(tmp_path: Path, **kwargs) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "study.yaml").write_text(SPEC)
    write_study(Store(f"sqlite:///{folder / 'store.db'}"), **kwargs)
    return folder


def test_every_format_from_a_study_folder(tmp_path: Path) -> None:
    folder = make_study_dir(tmp_path, fail_variant="aqlm-3bit")
    written = write_report(folder)
    out = folder / "report"
    assert {p.parent for p in written.values()} == {out}
    expected = {
        "report.md",
        "report.html",
        "tables.tex",
        "report.json",
        "pass1_vs_memory.png",
        "drop_vs_bits.png",
        "drop_vs_size.png",
        "table3-multipl-e-humaneval.csv",
        "table3-mceval.csv",
        "table5-calibration.csv",
        "table6-model-size.csv",
        "memory.csv",
        "cost.csv",
        "comparisons.csv",
    }
    assert expected <= {p.name for p in out.iterdir()}
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    payload = json.loads((out / "report.json").read_text())
    # 2 models x 7 quantized variants x 4 benchmarks, minus the failed 13B 3-bit variant.
    assert len(payload["comparisons"]) == (2 * 7 - 1) * 4
    two_bit = [c for c in payload["comparisons"] if c["variant"] == "aqlm-2bit"]
    assert all(c["pass_at_k"]["pass@1"] < c["baseline_pass_at_k"]["pass@1"] for c in two_bit)
    assert all(c["significance"] in ("*", "**", "***") and c["odds_ratio"] > 1 for c in two_bit)
    assert all(c["memory_reduction_pct"] > 80 for c in two_bit)
    # Calibration: code vs random and code+ft vs random, per model and benchmark.
    assert {(c["variant"], c["reference"]) for c in payload["calibration"]} == {("aqlm-2bit-code", "aqlm-2bit")}
    assert len(payload["calibration"]) == 2 * 4

    with (out / "table3-multipl-e-humaneval.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:4] == ["Model", "Params", "Precision", "Size"]
    assert rows[0][4:] == ["Python pass@1", "Python OR", "Java pass@1", "Java OR"]
    precisions = [r[2] for r in rows[1:9]]
    assert precisions == [
        "fp16",
        "8-bit AQLM 4x15",
        "4-bit AQLM 2x15",
        "3-bit AQLM 2x12",
        "2-bit AQLM 1x15",
        "2-bit AQLM 1x15 (code)",
        "2-bit AQLM 1x15 (code, fine-tuned)",
        "4-bit RTN g128",
    ]
    assert rows[1][3] == "13.48 GB" and rows[1][1] == "7B"
    assert any(r[4] == "failed" for r in rows if r[0] == "Coder-13B")

    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "src='http" not in html and "<link" not in html
    assert "Table 3 layout" in html and "Table 5 layout" in html and "Table 6 layout" in html
    tex = (out / "tables.tex").read_text()
    assert tex.count("\\begin{tabular}") == 11 and "\\toprule" in tex and "\\multicolumn{2}{c}{Python}" in tex
    md = (out / "report.md").read_text()
    assert "![pass1_vs_memory](pass1_vs_memory.png)" in md
    for fact in (
        "excluded McEval_Java_2_findNthLeapYear",
        "repaired McEval_Python_9",
        "temperature 0.2",
        "FAILED: CUDA out of memory",
        "duplicates HumanEval/0",
        # where each stage ran, as its workers recorded it (not the machine rendering the report)
        "quantize #1: python 3.11.9, codequant-quantizer 0.1.0, torch 2.6.0+cu124.",
        "quantize #1 hardware: AMD EPYC 9654 96-Core Processor (192 cores, 1511.6 GiB); GPU: NVIDIA H100",
        "quantize #2 hardware: Intel(R) Xeon(R) Platinum 8480+ (112 cores, 2015.3 GiB); GPU: NVIDIA A100",
        "report: python ",
    ):
        assert fact in md, fact


@pytest.mark.postgres
def test_report_of_a_study_id_in_postgresql(pg_url: str, tmp_path: Path) -> None:
    study_id = write_study(Store(pg_url))
    written = write_report(study_id, tmp_path / "out", ["json", "csv"], store_url=pg_url)
    assert written["json"].exists() and not (tmp_path / "out" / "report.html").exists()


def test_unexecuted_samples_are_an_error_not_a_silent_drop(tmp_path: Path) -> None:
    folder = make_study_dir(tmp_path, skip_execution_of="aqlm-4bit")
    with pytest.raises(
        InputError,
        match=r"Coder-7B/aqlm-4bit on multiple-humaneval-py: 0 of 72 samples not "
        r"generated, 72 not executed yet",
    ):
        write_report(folder)
    assert not (folder / "report").exists()


def test_report_cli(tmp_path: Path) -> None:
    folder = make_study_dir(tmp_path)
    result = codequant("report", str(folder), "--format", "md,tex", timeout=300)
    assert result.returncode == 0, result.stderr
    assert (folder / "report" / "report.md").exists() and not (folder / "report" / "report.html").exists()
    bad = codequant("report", str(folder), "--format", "docx", timeout=120)
    assert (
        bad.returncode == 2 and "expected a comma-separated list of md, html, csv, tex, json, got 'docx'" in bad.stderr
    )
    missing = codequant("report", "nope", timeout=120, env={"PATH": "/usr/bin"})
    assert missing.returncode == 2 and "give --store" in missing.stderr


def test_pass_at_10_is_shown_where_every_row_has_ten_samples(tmp_path: Path) -> None:
    spec = SPEC.replace("sampling: {n: 6}", "sampling: {n: 12}")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "study.yaml").write_text(spec)
    write_study(Store(f"sqlite:///{folder / 'store.db'}"), spec=spec)
    write_report(folder, formats=["csv", "json"])
    out = folder / "report"
    with (out / "table3-multipl-e-humaneval.csv").open() as handle:
        header = next(csv.reader(handle))
    assert header[4:] == ["Python pass@1", "Python pass@10", "Python OR", "Java pass@1", "Java pass@10", "Java OR"]
    with (out / "comparisons.csv").open() as handle:
        assert "pass@10" in next(csv.reader(handle)) and "pass@100" not in (out / "comparisons.csv").read_text()
    with (out / "table6-model-size.csv").open() as handle:
        assert "MultiPL-E HumanEval Python pass@10 quant." in next(csv.reader(handle))
    with (out / "table5-calibration.csv").open() as handle:
        rows = list(csv.reader(handle))
    column = rows[0].index("McEval Java pass@10")
    assert all(float(r[column]) >= float(r[rows[0].index("McEval Java pass@1")].split()[0]) for r in rows[1:])
    payload = json.loads((out / "report.json").read_text())
    # pass@10 of the stored outcomes, recomputed here with exact binomials: 1 - C(n-c, 10) / C(n, 10).
    for comparison in payload["comparisons"]:
        assert comparison["pass_at_k"]["pass@10"] >= comparison["pass_at_k"]["pass@1"]
    data = load_study_data(Store(f"sqlite:///{folder / 'store.db'}"), "synthetic")
    baseline = data.models[0].baseline
    outcomes = {p: list(s.values()) for p, s in data.outcomes[(baseline.key, "multiple-humaneval-py")].items()}
    expected = sum(1 - math.comb(12 - sum(v), 10) / math.comb(12, 10) for v in outcomes.values()) / len(outcomes)
    record = next(r for r in payload["tables"]["table3-multipl-e-humaneval"]["records"] if r["variant"] == "fp16")
    assert record["multiple-humaneval-py"]["pass@10"] == pytest.approx(expected)
    assert record["multiple-humaneval-py"]["pass@10"] > record["multiple-humaneval-py"]["pass@1"]


def test_the_cost_table_shows_what_serving_each_variant_cost(tmp_path: Path) -> None:
    folder = make_study_dir(tmp_path)
    write_report(folder, formats=["csv", "json"])
    with (folder / "report" / "cost.csv").open() as handle:
        rows = {(r["Model"], r["Variant"]): r for r in csv.DictReader(handle)}
    fp16, two_bit, rtn = (rows[("Coder-7B", v)] for v in ("fp16", "aqlm-2bit", "rtn-4bit"))
    assert fp16["Precision"] == "fp16" and two_bit["Precision"] == "2-bit AQLM 1x15"
    # 24,000 tokens in 60 s; latencies 2, 3, 4, 5 s ten times each.
    assert (fp16["tokens/s"], fp16["p50 latency (s)"]) == ("400.0", "3.50")
    assert fp16["Peak memory as served"] == "15.48 GB" and fp16["Measured as"] == "CUDA peak allocated"
    assert two_bit["Peak memory as served"] == "3.69 GB" and two_bit["Held-out perplexity"] == "9.50"
    # An external endpoint has no memory or perplexity routes: its cost figures are "–", not an error.
    assert rtn["Served by"] == "external endpoint (openai)" and rtn["tokens/s"] == "400.0"
    assert (rtn["Peak memory as served"], rtn["Measured as"], rtn["Held-out perplexity"]) == ("–", "–", "–")
    records = json.loads((folder / "report" / "report.json").read_text())["tables"]["cost"]["records"]
    assert next(r for r in records if r["variant"] == "rtn-4bit")["note"] == "the endpoint has no /codequant routes"
