"""The distributed runner checks verdicts and serving like the embedded one (issues 24 and 25): the same study run
both ways, with real Celery workers for every queue, stores the same reference self-checks, calibrated limits
(inside every execution key), flake re-runs and serving agreement results."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from codequant.store import Completion, Job, Store, Verification
from tests.cli import codequant
from tests.orchestrator.cluster import Cluster, kill_group

pytestmark = [pytest.mark.redis, pytest.mark.slow]
STUDY = """\
name: checks
output_dir: {out}
models:
  - name: tiny
    builtin: {{kind: tiny-code, profile: test}}
    variants:
      - {{name: fp32, method: baseline}}
      - {{name: rtn-2bit, method: rtn, bits: 2, group_size: 64}}
benchmarks:
  - {{name: humaneval, limit: 3, max_new_tokens: 160}}
sampling: {{n: 2}}
execution: {{calibration: {{factor: 4, floor_s: 30}}, flakes: {{sample: 1.0, policy: rerun}}}}
serving: {{agreement: {{problems: 2, max_new_tokens: 24}}}}
statistics: {{bootstrap_samples: 200}}
"""


def _stored(out: Path) -> tuple[dict[str, str | None], list[dict[str, Any]], set[str]]:
    """(completion key -> execution key, the verdict checks without measured times, jobs not done)."""
    store = Store(f"sqlite:///{out / 'store.db'}")
    with store.session() as session:
        executions = dict(session.execute(select(Completion.key, Completion.execution_key)).all())
        checks = [
            {
                "key": v.key,
                "kind": v.kind,
                "benchmark": v.benchmark,
                "variant": v.variant_key,
                "checked": [(r["name"], r["statuses"]) for r in v.result.get("runs", [])],
                "reruns": v.result.get("reruns"),
                "timeouts": v.result.get("timeouts"),
            }
            for v in session.scalars(select(Verification).order_by(Verification.key))
        ]
        unfinished = {j.key for j in session.scalars(select(Job).where(Job.status != "done"))}
    store.dispose()
    return executions, checks, unfinished


def _agreement(out: Path) -> dict[str, dict[str, Any]]:
    """The agreement results written, without the model folder (each run quantized into its own)."""
    found = {str(p.relative_to(out)): json.loads(p.read_text()) for p in sorted((out / "agreement").rglob("*.json"))}
    return {path: {k: v for k, v in result.items() if k != "model"} for path, result in found.items()}


def test_a_distributed_study_checks_verdicts_and_serving_like_an_embedded_one(cluster: Cluster, tmp_path: Path) -> None:
    runs = {}
    for mode in ("embedded", "distributed"):
        out = tmp_path / mode
        study = tmp_path / f"{mode}.yaml"
        study.write_text(STUDY.format(out=out))
        if mode == "embedded":
            done = codequant("run", study, "--no-progress", timeout=900)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        else:
            run = cluster.run(study)
            try:
                stdout, stderr = run.communicate(timeout=900)
            except subprocess.TimeoutExpired:
                kill_group(run)
                raise
            assert run.returncode == 0, stdout[-2000:] + stderr[-3000:]
        runs[mode] = out

    embedded, distributed = (_stored(runs[mode]) for mode in ("embedded", "distributed"))
    # The same programs under the same calibrated limits: every completion has the same execution key.
    assert distributed[0] == embedded[0] and None not in distributed[0].values()
    # The same checks: the references ran (twice each, all passing), every variant's failures ran again. (Java's
    # self-check in the executor containers: tests/deploy/test_compose_stack.py.)
    assert distributed[1] == embedded[1]
    kinds = sorted(c["kind"] for c in distributed[1])
    assert kinds == ["flakes"] * 2 + ["self-check"]
    for check in distributed[1]:
        if check["kind"] == "self-check":
            assert len(check["checked"]) == 3
            assert all(statuses == ["OK", "OK"] for _, statuses in check["checked"])
            # max(30 s, 4 x reference runtime): the floor, as no reference takes 7.5 s (measured runtimes would make
            # the limits, and so the execution keys, differ between the two runs)
            assert set(check["timeouts"].values()) == {30.0}
    assert not distributed[2], f"jobs not done: {distributed[2]}"
    # The serving agreement check ran for every variant and completion-mode benchmark, with the same result.
    agreement = _agreement(runs["distributed"])
    assert sorted(agreement) == [f"agreement/tiny/{variant}/humaneval.json" for variant in ("fp32", "rtn-2bit")]
    assert agreement == _agreement(runs["embedded"])
    assert all(a["token_agreement"] == 1.0 and a["verdict_agreement"] == 1.0 for a in agreement.values())
    markdown = (runs["distributed"] / "report" / "report.md").read_text()
    assert "humaneval (python): 3 checked, 0 failed, 0 flipped." in markdown
    assert "max(30 s, 4 × reference runtime)" in markdown
