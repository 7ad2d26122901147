"""A smaller demo, end to end through `codequant run` on the embedded default: quantize, serve and sample,
sandboxed execution, comparisons and report — then a second run that reuses everything
(the report included, unless a stored result changed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import func, select

from codequant.store import Completion, Execution, Job, JobEnvironment, Store, Variant, Verification

from .conftest import Codequant

STUDY = """\
name: e2e
output_dir: {out}
models:
  - name: tiny
    builtin: {{kind: tiny-code, profile: test}}
    variants:
      - {{name: fp32, method: baseline}}
      - {{name: aqlm-2x8, method: aqlm, num_codebooks: 2, nbits_per_codebook: 8, in_group_size: 8, beam_size: 2,
          max_epochs: 3, calibration: {{set: code, nsamples: 16, seqlen: 128}}}}
      - {{name: rtn-2bit, method: rtn, bits: 2, group_size: 64}}
benchmarks:
  - {{name: humaneval, limit: 6, max_new_tokens: 256}}
  - {{name: mceval-java, limit: 3, max_new_tokens: 256}}
  - {{name: multiple-humaneval-java, limit: 2, max_new_tokens: 96}}
sampling: {{n: 3}}
execution: {{calibration: {{factor: 4, floor_s: 3}}, flakes: {{sample: 0.5, policy: rerun}}}}
statistics: {{bootstrap_samples: 500}}
"""


def test_the_study_runs_end_to_end_and_reruns_from_the_store(tiny_model: Path, run_study, codequant) -> None:
    out, first = run_study(STUDY)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    assert "pass@1" in first.stdout and f"report: {out}/report/" in first.stdout

    store = Store(f"sqlite:///{out / 'store.db'}")
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Completion)) == 3 * (6 + 3 + 2) * 3
        assert (
            session.scalar(select(func.count()).select_from(Completion).where(Completion.execution_key.is_(None))) == 0
        )
        assert session.scalar(select(func.count()).select_from(Execution)) > 0
        assert set(session.scalars(select(Variant.status))) == {"ready"}
        assert set(session.scalars(select(Job.status))) == {"done"}
        quantize_seconds = session.scalar(select(func.sum(Job.seconds)).where(Job.stage == "quantize"))
        # Each stage recorded the software it ran with: torch where models were quantized, java where code ran.
        recorded = {row.stage: row.environment for row in session.scalars(select(JobEnvironment))}
    assert set(recorded) == {"quantize", "generate", "execute", "report"}
    assert "torch" in recorded["quantize"] and "codequant-serving" in recorded["generate"]
    assert recorded["execute"]["java"].startswith(("openjdk", "java")) and "torch" not in recorded["execute"]
    for name in ("report.md", "report.html", "tables.tex", "report.json", "pass1_vs_memory.png"):
        assert (out / "report" / name).stat().st_size > 0, name
    report = json.loads((out / "report" / "report.json").read_text())
    by_variant: dict[str, list[dict]] = {}
    for comparison in report["comparisons"]:
        by_variant.setdefault(comparison["variant"], []).append(comparison)
    seen = [c for c in by_variant["aqlm-2x8"] if c["labels"]["benchmark"] != "multiple-humaneval-java"]
    assert sum(c["pass_at_k"]["pass@1"] for c in seen) < sum(c["baseline_pass_at_k"]["pass@1"] for c in seen)
    assert (out / "results" / "tiny" / "fp32" / "humaneval.jsonl").exists()
    # What serving each variant cost, measured by the generate stage on codequant serve.
    cost = {r["variant"]: r for r in report["tables"]["cost"]["records"]}
    assert set(cost) == {"fp32", "aqlm-2x8", "rtn-2bit"}
    for figures in cost.values():
        assert figures["tokens_per_s"] > 0 and figures["latency_p50_s"] > 0 and figures["requests"] == 6 + 3 + 2
        assert figures["peak_memory_bytes"] > figures["model_bytes"] > 0 and figures["perplexity"] > 1
    # Each variant's own weights were scored (the tiny model memorises its training problems, so on held-out code
    # its perplexity is in the thousands and quantization noise can lower it: no ordering is asserted).
    assert len({round(figures["perplexity"], 3) for figures in cost.values()}) == 3
    assert cost["aqlm-2x8"]["model_bytes"] < cost["fp32"]["model_bytes"]

    _check_verdict_checks(out, store, codequant)

    written = {p.name: p.stat().st_mtime_ns for p in (out / "report").iterdir()}
    start = time.monotonic()
    second = codequant("run", str(out.parent / "study.yaml"), "--no-progress")
    assert second.returncode == 0, second.stderr[-3000:]
    assert time.monotonic() - start < 120
    assert second.stdout == first.stdout
    with store.session() as session:
        assert session.scalar(select(func.sum(Job.seconds)).where(Job.stage == "quantize")) == quantize_seconds
    # Nothing changed, so the report is not written again; a changed outcome writes it again.
    assert {p.name: p.stat().st_mtime_ns for p in (out / "report").iterdir()} == written
    with store.session() as session:
        execution = session.scalars(select(Execution).order_by(Execution.key)).first()
        execution.passed = not execution.passed
    assert codequant("run", str(out.parent / "study.yaml"), "--no-progress").returncode == 0
    assert (out / "report" / "report.json").stat().st_mtime_ns != written["report.json"]
    with store.session() as session:
        execution = session.scalars(select(Execution).order_by(Execution.key)).first()
        execution.passed = not execution.passed
    status = codequant("status", str(out), "--json", timeout=120)
    stages = json.loads(status.stdout)["stages"]
    assert stages["execute"] == {"done": 99, "total": 99, "failed": 0}

    # Another study over the same variants reuses them, and says its quantize stage is done.
    other = out.parent / "other.yaml"
    other.write_text((out.parent / "study.yaml").read_text().replace("name: e2e", "name: e2e-other", 1))
    assert codequant("run", str(other), "--no-progress").returncode == 0
    other_status = codequant("status", str(other), "--json", timeout=120)
    assert json.loads(other_status.stdout)["stages"]["quantize"] == {"done": 3, "total": 3, "failed": 0}


def _check_verdict_checks(out: Path, store: Store, codequant: Codequant) -> None:
    """The report shows the self-check, the calibrated limits, the flake rates and the provenance (issue 24); the
    calibrated limits change no verdict: every sample, run again under the study's plain 15 s timeout, agrees."""
    markdown = (out / "report" / "report.md").read_text()
    for heading in ("Reference self-check", "Calibrated time limits", "Flakes", "Verdict provenance"):
        assert heading in markdown, heading
    assert "humaneval (python): 6 checked, 0 failed, 0 flipped." in markdown
    assert "mceval-java (java): 3 checked, 0 failed" in markdown
    assert "multiple-humaneval-java (java): 0 checked, 0 failed, 0 flipped; 2 without a reference" in markdown
    assert "multiple-humaneval-java: no measured reference: the study's timeout for all 2 problems." in markdown
    assert "max(3 s, 4 × reference runtime)" in markdown and "sandbox layers: bubblewrap" in markdown
    with store.session() as session:
        kinds = sorted(session.scalars(select(Verification.kind)))
    assert kinds == ["flakes"] * 9 + ["self-check"] * 3
    # Every variant's samples on every benchmark, run again in one command (one executor start-up).
    results = sorted((out / "results").glob("*/*/*.jsonl"))
    together = out / "all-results.jsonl"
    together.write_text("".join(path.read_text() for path in results))
    again = out / "all-results.again.jsonl"
    done = codequant("execute", str(together), "--out", str(again), "--timeout", "15", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    before = [json.loads(line)["passed"] for line in together.read_text().splitlines()]
    after = [json.loads(line)["passed"] for line in again.read_text().splitlines()]
    assert len(before) == 3 * (6 + 3 + 2) * 3 and before == after
    together.unlink()
    again.unlink()
