"""The cold demo: `codequant run examples/demo.yaml` with an empty cache and output folder, timed, with where
the time went (the seconds each job recorded in the study's store, per stage and per variant), then the same
command again, warm, and the hashes that let two runs (or two machines) be compared.

    .venv/bin/python benchmarks/cold_demo.py [--workdir DIR] [--keep]

"Cold" means everything the demo builds is built: the shipped tiny model copied into the cache, the calibration
windows, the Java harness's class-data archive, every variant quantized, served, sampled and executed, the report.
The virtualenv is taken as installed (`make install` is separate). The load average before and after is printed:
only a run on a quiet machine is the figure. The summary table's digest (printed by `codequant run`), the
artifacts' hashes and the report's comparisons must not depend on the machine or its load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sha(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(codequant: Path, study: Path, environment: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the run and every process it started, stdout)."""
    start, cpu = time.monotonic(), _cpu_of_children()
    run = subprocess.run(
        [str(codequant), "run", str(study), "--no-progress"], env=environment, capture_output=True, text=True
    )
    wall = time.monotonic() - start
    if run.returncode != 0:
        sys.exit(f"the demo failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    return wall, _cpu_of_children() - cpu, run.stdout


def _where_the_time_went(store: Path) -> tuple[list[tuple[str, float, int]], dict[str, dict[str, float]]]:
    with sqlite3.connect(store) as db:
        stages = db.execute("SELECT stage, SUM(seconds), COUNT(*) FROM jobs GROUP BY stage").fetchall()
        rows = db.execute(
            "SELECT v.variant_name, j.stage, SUM(j.seconds) FROM jobs j JOIN variants v ON v.key = j.variant_key "
            "GROUP BY v.variant_name, j.stage"
        ).fetchall()
    per_variant: dict[str, dict[str, float]] = defaultdict(dict)
    for variant, stage, seconds in rows:
        per_variant[variant][stage] = seconds
    return stages, per_variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, help="folder for the cache and the run (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the folder afterwards")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cq-cold-demo-"))
    if args.workdir is not None and any(work.glob("*")):
        sys.exit(f"{work}: not empty (a cold run needs an empty cache and output folder)")
    work.mkdir(parents=True, exist_ok=True)
    study = work / "demo.yaml"
    out = work / "run"
    text = (ROOT / "examples" / "demo.yaml").read_text()
    study.write_text(text.replace("output_dir: runs/demo", f"output_dir: {out}"))
    environment = {**os.environ, "CODEQUANT_CACHE_DIR": str(work / "cache")}
    codequant = Path(sys.executable).with_name("codequant")
    load_before = os.getloadavg()
    wall, cpu, stdout = _run(codequant, study, environment)
    load_after = os.getloadavg()
    warm, warm_cpu, warm_stdout = _run(codequant, study, environment)
    stages, per_variant = _where_the_time_went(out / "store.db")
    accounted = sum(seconds for _, seconds, _ in stages)
    print(
        f"cold demo: {wall:.1f} s wall, {cpu:.1f} s CPU, load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    for stage, seconds, count in stages:
        print(f"  {stage}: {seconds:.1f} s in {count} jobs")
    print(f"  outside jobs (start-up, loading benchmarks, the summary): {wall - accounted:.1f} s")
    print("  per variant (quantize / generate / execute, s):")
    for variant, seconds in per_variant.items():
        cells = " / ".join(f"{seconds.get(stage, 0.0):.1f}" for stage in ("quantize", "generate", "execute"))
        print(f"    {variant}: {cells}")
    print(
        f"warm demo (everything stored): {warm:.1f} s wall, {warm_cpu:.1f} s CPU; same output: {warm_stdout == stdout}"
    )
    model = next((work / "cache" / "models").glob("tiny-code-full-seed0-*"))
    print(f"  tiny model weights: {_sha(model)}")
    for artifact in sorted((out / "artifacts").glob("*/*")):
        print(f"  {artifact.name}: {_sha(artifact)}")
    report = json.loads((out / "report" / "report.json").read_text())
    summary = hashlib.sha256(json.dumps(report.get("comparisons"), sort_keys=True).encode()).hexdigest()[:16]
    print(f"  comparisons in report.json: {summary}")
    print(stdout[stdout.find("pass@1") :].rstrip())
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
