"""The cold demo: `codequant run examples/demo.yaml` with an empty cache and output folder, timed, with where
the minutes went (the seconds each job recorded in the study's store) and the artifacts' hashes.

    .venv/bin/python benchmarks/cold_demo.py [--workdir DIR] [--keep]

"Cold" means everything the demo builds is built: the tiny model (trained), the offline calibration corpus,
the Java harness's class-data archive, every variant. The virtualenv is taken as installed (`make install`
is separate). The load average before and after is printed: only a run on a quiet machine is the figure.
Weights, artifacts and the summary table must not depend on the machine's load: the hashes printed let two
runs be compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sha(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


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
    start = time.monotonic()
    run = subprocess.run(
        [str(codequant), "run", str(study), "--no-progress"], env=environment, capture_output=True, text=True
    )
    wall = time.monotonic() - start
    if run.returncode != 0:
        sys.exit(f"the demo failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    with sqlite3.connect(out / "store.db") as db:
        stages = db.execute("SELECT stage, SUM(seconds), COUNT(*) FROM jobs GROUP BY stage").fetchall()
        first = db.execute("SELECT seconds FROM jobs WHERE stage = 'quantize' ORDER BY started_at LIMIT 1").fetchone()[
            0
        ]
    accounted = sum(seconds for _, seconds, _ in stages)
    print(f"cold demo: {wall:.1f} s wall, load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"  first quantize job (building the tiny model, then the fp32 baseline): {first:.1f} s")
    for stage, seconds, count in stages:
        print(f"  {stage}: {seconds:.1f} s in {count} jobs")
    print(f"  outside jobs (start-up, loading benchmarks, starting servers, summary): {wall - accounted:.1f} s")
    model = next((work / "cache" / "models").glob("tiny-code-*"))
    print(f"  tiny model weights: {_sha(model)}")
    for artifact in sorted((out / "artifacts").glob("*/*")):
        print(f"  {artifact.name}: {_sha(artifact)}")
    report = json.loads((out / "report" / "report.json").read_text())
    summary = hashlib.sha256(json.dumps(report.get("comparisons"), sort_keys=True).encode()).hexdigest()[:16]
    print(f"  comparisons in report.json: {summary}")
    print(run.stdout[run.stdout.find("pass@1") :].rstrip())
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
