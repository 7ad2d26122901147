"""The distributed stack under faults, with a real Redis server and real worker processes.

A private redis-server on a free port (so restarting it disturbs nothing else), one worker per queue,
and `codequant run --distributed` as a separate process — each of them can be killed like in production.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from codequant.launch import free_port
from codequant.store import Completion, Execution, Job, Store, Variant
from tests.orchestrator.cluster import Cluster, Redis, kill_group, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]
STUDY = """\
name: {name}
output_dir: {out}
models:
  - name: tiny
    builtin: {{kind: tiny-code, profile: test}}
    variants:
      - {{name: fp32, method: baseline}}
      - {{name: rtn-4bit, method: rtn, bits: 4, group_size: 64}}
{extra}
benchmarks:
  - {{name: humaneval, limit: {limit}, max_new_tokens: 200}}
sampling: {{n: {n}}}
statistics: {{bootstrap_samples: 200}}
"""


def write_study(tmp_path: Path, name: str, *, limit: int = 16, n: int = 6, extra: str = "") -> tuple[Path, Path]:
    out = tmp_path / name
    study = tmp_path / f"{name}.yaml"
    study.write_text(STUDY.format(name=name, out=out, limit=limit, n=n, extra=extra))
    return study, out


def counts(out: Path) -> tuple[int, int]:
    """(stored completions, completions with an execution) of a study."""
    if not (out / "store.db").exists():
        return 0, 0
    store = Store(f"sqlite:///{out / 'store.db'}")
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(Completion)) or 0
        executed = session.scalar(select(func.count(Completion.execution_key))) or 0
    store.dispose()
    return total, executed


def finish(process: subprocess.Popen, timeout: float = 900) -> str:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise
    assert process.returncode == 0, out[-2000:] + err[-3000:]
    return out


def assert_complete(out: Path, samples: int) -> None:
    """Every completion stored once, each linked to exactly one stored execution, the report built."""
    store = Store(f"sqlite:///{out / 'store.db'}")
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Completion)) == samples
        linked = session.execute(select(Completion.execution_key)).scalars().all()
        assert None not in linked
        stored = set(session.scalars(select(Execution.key)))
        assert set(linked) <= stored
    assert (out / "report" / "report.html").exists()


def assert_mid_study(run: subprocess.Popen, out: Path, samples: int) -> int:
    """The study is still running and has executions left to do (so what follows is a fault mid-study, not after
    it); returns how many samples were executed at this point."""
    executed = counts(out)[1]
    assert run.poll() is None, "the study finished before the fault could be injected"
    assert executed < samples, f"all {samples} samples were executed before the fault"
    return executed


def test_killing_an_executor_worker_mid_study_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    study, out = write_study(tmp_path, "kill-executor")
    samples = 2 * 16 * 6
    run = cluster.run(study)
    wait_for(lambda: 0 < counts(out)[1] < samples or run.poll() is not None, 600, "execution never started")
    executed = assert_mid_study(run, out, samples)
    cluster.kill_worker("execute")  # kill -9, mid-chunk
    time.sleep(2)
    assert_mid_study(run, out, samples)  # nothing else executes completions: the study waits for an executor
    cluster.start_worker("execute")
    finish(run)
    assert_complete(out, samples)
    assert counts(out)[1] - executed > 0  # the restarted executor did the rest


def test_a_restarted_orchestrator_resumes_without_redoing_stored_work(cluster: Cluster, tmp_path: Path) -> None:
    study, out = write_study(tmp_path, "restart-orchestrator")
    samples = 2 * 16 * 6
    first = cluster.run(study)
    wait_for(lambda: counts(out)[1] > 0 or first.poll() is not None, 600, "execution never started")
    assert_mid_study(first, out, samples)
    kill_group(first)
    store = Store(f"sqlite:///{out / 'store.db'}")
    with store.session() as session:
        generated_before = session.scalar(select(func.count()).select_from(Completion))
        quantize_attempts = {j.key: j.attempts for j in session.scalars(select(Job).where(Job.stage == "quantize"))}
    finish(cluster.run(study))
    assert_complete(out, samples)
    with store.session() as session:
        # Nothing finished was done again: quantization jobs were not re-sent, and generation only added
        # what was missing.
        assert {
            j.key: j.attempts for j in session.scalars(select(Job).where(Job.stage == "quantize"))
        } == quantize_attempts
        generate_attempts = [j.attempts for j in session.scalars(select(Job).where(Job.stage == "generate"))]
    assert generated_before > 0 and max(generate_attempts) == 1


def test_restarting_redis_mid_study(cluster: Cluster, redis: Redis, tmp_path: Path) -> None:
    study, out = write_study(tmp_path, "restart-redis")
    samples = 2 * 16 * 6
    run = cluster.run(study)
    wait_for(lambda: counts(out)[0] > 0 or run.poll() is not None, 600, "generation never started")
    assert_mid_study(run, out, samples)
    redis.stop()  # queued messages and results are gone: nothing is kept on disk
    time.sleep(3)
    assert_mid_study(run, out, samples)  # the orchestrator waits out the outage instead of giving up
    redis.start()
    finish(run)
    assert_complete(out, samples)


def test_an_endpoint_that_stays_down_fails_its_variant_and_the_others_finish(cluster: Cluster, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    remote = (
        "  - name: remote-model\n    builtin: {kind: tiny-code, profile: test}\n    variants:\n"
        f"      - {{name: fp32, method: baseline, endpoint: {{url: '{dead}', api: tgi}}}}\n"
    )
    study, out = write_study(tmp_path, "endpoint-down", limit=4, n=2)
    study.write_text(study.read_text().replace("benchmarks:", remote + "benchmarks:"))
    run = cluster.run(study)
    try:
        out_text, err = run.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        kill_group(run)
        raise
    assert run.returncode == 1, out_text[-2000:] + err[-2000:]
    assert "remote-model/fp32" in out_text and "unreachable" in out_text
    store = Store(f"sqlite:///{out / 'store.db'}")
    with store.session() as session:
        states = {(v.model_name, v.variant_name): (v.status, v.error) for v in session.scalars(select(Variant))}
    assert states[("remote-model", "fp32")][0] == "failed" and "unreachable" in states[("remote-model", "fp32")][1]
    assert states[("tiny", "fp32")][0] == states[("tiny", "rtn-4bit")][0] == "ready"
    assert counts(out) == (2 * 4 * 2, 2 * 4 * 2)
    assert "FAILED" in (out / "report" / "report.md").read_text()
