"""The compose deployment, built and run: `make images`, `docker compose up`, a study through the HTTP API whose
report equals the embedded runner's, then the faults users hit (an executor killed mid-execution, Redis
restarted mid-study, a worker stopped and started again) without a completion lost, executed twice or stuck.

Slow (a cold image build is minutes); skipped, with the engine's error, where no Docker engine can start.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests import cli
from tests.deploy.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

#: The small study: the tiny model's fp32 baseline and two round-to-nearest variants, a few HumanEval (Python)
#: and McEval Java problems, n = 2. The tiny model memorised most of them and 2-bit loses some (measured:
#: 83/83/58 % on HumanEval, 100/100/33 % on McEval Java), so the tables compare something.
STUDY = """\
name: {name}
models:
  - name: tiny
    builtin: {{kind: tiny-code, profile: test, seed: 0}}
    variants:
      - {{name: fp32, method: baseline}}
      - {{name: rtn-3bit, method: rtn, bits: 3, group_size: 64}}
      - {{name: rtn-2bit, method: rtn, bits: 2, group_size: 64}}
benchmarks:
  - {{name: humaneval, limit: {python}, max_new_tokens: 192}}
  - {{name: mceval-java, limit: {java}, max_new_tokens: 192}}
sampling: {{n: {n}, temperature: 0.2, top_p: 0.95, seed: {seed}}}
statistics: {{bootstrap_samples: 200}}
"""
SMALL = {"name": "compose-e2e", "python": 6, "java": 3, "n": 2, "seed": 0}
#: The fault study: more samples (another seed: none of them stored yet), so each stage lasts long enough to
#: be interrupted; the variants are the small study's, already quantized.
FAULTS = {"name": "compose-faults", "python": 8, "java": 6, "n": 4, "seed": 1}


def pass_at_k_tables(report: dict[str, Any]) -> dict[str, list[list[str]]]:
    """The report's pass@k tables (the reference study's Table 3 layout), as rendered."""
    return {key: table["rows"] for key, table in report["tables"].items() if key.startswith("table3")}


def assert_nothing_lost_twice_or_stuck(stack: Stack, study_id: str, expected_completions: int) -> None:
    """Every wanted completion stored once and executed, its execution stored once, every job done."""
    # The study's completions: its variants' rows made since it was submitted (an earlier study shares variants).
    rows = stack.sql(
        "SELECT count(*), count(DISTINCT (c.variant_key, c.benchmark, c.problem, c.sample)), count(c.execution_key),"
        " count(e.key) FROM completions c"
        f" JOIN study_variants s ON s.variant_key = c.variant_key AND s.study_id = '{study_id}'"
        " LEFT JOIN executions e ON e.key = c.execution_key"
        f" WHERE c.created_at >= (SELECT created_at FROM studies WHERE id = '{study_id}')"
    )
    stored, distinct_samples, with_execution, executions_found = map(int, rows[0])
    assert (stored, distinct_samples, with_execution, executions_found) == (expected_completions,) * 4, rows
    stuck = stack.sql(f"SELECT key, stage, status FROM jobs WHERE study_id = '{study_id}' AND status <> 'done'")
    assert stuck == [], stuck
    for queue in ("quantize", "generate", "execute", "report"):
        assert stack.redis("LLEN", queue) == "0", f"tasks left in the {queue} queue"


def test_a_study_through_the_api_reports_what_the_embedded_runner_does(
    stack: Stack, tiny_model_in_stack: Path, tmp_path: Path
) -> None:
    assert stack.api("GET", "/health").status_code == 200
    study = STUDY.format(**SMALL)
    started = time.monotonic()
    study_id = stack.submit(study)
    # The same study on the embedded runner, in a subprocess on the host, meanwhile.
    embedded_out = tmp_path / "embedded"
    (tmp_path / "study.yaml").write_text(f"{study}output_dir: {embedded_out}\n")
    embedded = cli.codequant("run", tmp_path / "study.yaml", "--no-progress", timeout=1200)
    assert embedded.returncode == 0, embedded.stderr[-3000:]

    progress = stack.follow(study_id, timeout=1200)
    compose_seconds = time.monotonic() - started
    assert progress["status"] == "done", f"{progress}\n{stack.diagnosis()}"
    expected = 3 * (SMALL["python"] + SMALL["java"]) * SMALL["n"]
    assert progress["stages"]["execute"] == {"done": expected, "total": expected, "failed": 0}

    response = stack.api("GET", f"/studies/{study_id}/report/report.json")
    assert response.status_code == 200, response.text
    in_compose = pass_at_k_tables(response.json())
    on_embedded = pass_at_k_tables(json.loads((embedded_out / "report" / "report.json").read_text()))
    assert in_compose and in_compose == on_embedded
    # Not all-or-nothing: the table compares something.
    cells = [cell for rows in in_compose.values() for row in rows for cell in row[4:]]
    assert len({re.sub(r"[^0-9.]", "", c) for c in cells if c}) > 2, in_compose
    # The executor containers checked the references before the first execution, as the embedded runner does.
    markdown = stack.api("GET", f"/studies/{study_id}/report/report.md").text
    for line in ("humaneval (python): 6 checked, 0 failed", "mceval-java (java): 3 checked, 0 failed"):
        assert line in markdown and line in (embedded_out / "report" / "report.md").read_text(), line
    html = stack.api("GET", f"/studies/{study_id}/report")
    assert html.status_code == 200 and "pass@1" in html.text
    assert_nothing_lost_twice_or_stuck(stack, study_id, expected)
    print(f"compose study: {compose_seconds:.0f} s (embedded alongside); stack up in {stack.up_seconds:.0f} s")


def test_the_study_survives_a_killed_executor_a_restarted_redis_and_a_restarted_worker(
    stack: Stack, tiny_model_in_stack: Path
) -> None:
    stack.up("--scale", "executor=3", "--no-recreate")
    assert len(stack.containers("executor")) == 3
    faults: list[str] = []

    def inject(progress: dict[str, Any]) -> None:
        generate, execute = progress["stages"]["generate"], progress["stages"]["execute"]
        if "redis" not in faults and generate["done"] > 0:
            faults.append("redis")
            stack.compose("restart", "redis")
        elif "worker" not in faults and "redis" in faults and 0 < generate["done"] < generate["total"]:
            faults.append("worker")
            stack.compose("stop", "--timeout", "2", "serving")
            stack.compose("start", "serving")
        elif "executor" not in faults and 0 < execute["done"] < execute["total"]:
            busy = busy_executor(stack)
            if busy:
                faults.append("executor")
                stack.docker("kill", busy)

    study_id = stack.submit(STUDY.format(**FAULTS))
    progress = stack.follow(study_id, timeout=1500, on_progress=inject)
    assert progress["status"] == "done", f"{progress}\n{stack.diagnosis()}"
    assert faults == ["redis", "worker", "executor"], f"faults injected: {faults}"
    expected = 3 * (FAULTS["python"] + FAULTS["java"]) * FAULTS["n"]
    assert_nothing_lost_twice_or_stuck(stack, study_id, expected)
    # Every sandboxed program's processes were reaped (zombies would exhaust the executor's pids_limit).
    executors = stack.containers("executor")
    assert executors and [stack.zombies(container) for container in executors] == [0] * len(executors)


def busy_executor(stack: Stack) -> str | None:
    """An executor container with a task it received and has not finished (its worker log says so)."""
    for container in stack.containers("executor"):
        log = stack.docker("logs", container).stderr
        received = set(re.findall(r"Task codequant\.\S+\[([\w-]+)\] received", log))  # ids: execute-<uuid>
        finished = set(re.findall(r"Task codequant\.\S+\[([\w-]+)\] (?:succeeded|failed|raised)", log))
        if received - finished:
            return container
    return None
