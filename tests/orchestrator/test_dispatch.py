"""The dispatcher with real Redis and real Celery workers: results, re-attachment, lost-task recovery."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from codequant.store import Job, Store
from codequant.store import Study as StudyRow
from codequant_orchestrator.dispatch import Dispatcher

pytestmark = pytest.mark.redis
BROKER = "redis://127.0.0.1:6379/14"
HERE = Path(__file__).resolve().parent


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(BROKER)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    client.flushdb()
    yield client
    client.flushdb()


def start_worker(name: str) -> subprocess.Popen:
    env = {**os.environ, "CODEQUANT_PROBE_BROKER": BROKER, "PYTHONPATH": str(HERE)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_probe_app:app",
            "worker",
            "-Q",
            "execute,report",
            "-c",
            "1",
            "--prefetch-multiplier",
            "1",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=HERE,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_tree(process: subprocess.Popen) -> None:
    """kill -9 the worker's whole process group (main process and pool children)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def make_dispatcher(tmp_path: Path) -> tuple[Dispatcher, Store]:
    sys.path.insert(0, str(HERE))
    from celery_probe_app import app

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.session() as session:
        if session.get(StudyRow, "s") is None:
            session.add(StudyRow(id="s", spec_yaml="", spec_hash=""))
    return Dispatcher(app, store), store


def drive(dispatcher: Dispatcher, until: callable, timeout: float, reap_every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    last = 0.0
    while not until():
        assert time.monotonic() < deadline, f"timed out; in flight: {sorted(dispatcher.inflight)}"
        dispatcher.poll()
        if time.monotonic() - last > reap_every:
            dispatcher.reap()
            last = time.monotonic()
        time.sleep(0.2)


def job(key: str) -> dict:
    return {"key": key, "study_id": "s", "stage": "execute"}


def test_results_arrive_and_jobs_are_booked(broker: redis.Redis, tmp_path: Path) -> None:
    dispatcher, store = make_dispatcher(tmp_path)
    worker = start_worker("a")
    try:
        done: dict[str, list] = {}
        for i in range(4):
            dispatcher.submit(
                job(f"j{i}"),
                "codequant.execute",
                [[{"id": i}], 0.1],
                on_success=lambda r, k=f"j{i}": done.__setitem__(k, r),
                on_failure=pytest.fail,
            )
        with store.session() as session:
            assert all(session.get(Job, f"j{i}").task_id for i in range(4))
        drive(dispatcher, lambda: len(done) == 4, timeout=60)
        assert done["j2"] == [{"id": 2, "done": True}]
    finally:
        kill_tree(worker)


def test_a_killed_worker_loses_nothing(broker: redis.Redis, tmp_path: Path) -> None:
    dispatcher, store = make_dispatcher(tmp_path)
    victim = start_worker("victim")
    done: dict[str, list] = {}
    for i in range(3):
        dispatcher.submit(
            job(f"j{i}"),
            "codequant.execute",
            [[{"id": i}], 2.0],
            on_success=lambda r, k=f"j{i}": done.__setitem__(k, r),
            on_failure=pytest.fail,
        )
    deadline = time.monotonic() + 60
    while broker.llen("probe:started") == 0:
        assert time.monotonic() < deadline, "the worker never started a task"
        time.sleep(0.1)
    kill_tree(victim)  # mid-task: the message is unacked, Redis would redeliver it only after hours
    killed = int(broker.lindex("probe:started", 0))
    assert [int(x) for x in broker.lrange("probe:finished", 0, -1)] == []  # it died before finishing anything
    with store.session() as session:
        first_task = session.get(Job, f"j{killed}").task_id
    survivor = start_worker("survivor")
    try:
        drive(dispatcher, lambda: len(done) == 3, timeout=120)
    finally:
        kill_tree(survivor)
    started = [int(x) for x in broker.lrange("probe:started", 0, -1)]
    finished = [int(x) for x in broker.lrange("probe:finished", 0, -1)]
    assert sorted(set(finished)) == [0, 1, 2] and done[f"j{killed}"] == [{"id": killed, "done": True}]
    # The killed task was delivered again — by the dispatcher, as a new task (not by Redis's hours-long
    # visibility timeout) — and ran to the end the second time.
    assert started.count(killed) == 2 and finished.count(killed) == 1
    with store.session() as session:
        row = session.get(Job, f"j{killed}")
        assert row.attempts == 2 and row.task_id != first_task


def test_a_restarted_orchestrator_reattaches_instead_of_resending(broker: redis.Redis, tmp_path: Path) -> None:
    first, store = make_dispatcher(tmp_path)
    first.submit(job("j"), "codequant.execute", [[{"id": 7}], 0.1], on_success=pytest.fail, on_failure=pytest.fail)
    with store.session() as session:
        task_id = session.get(Job, "j").task_id
    del first  # the orchestrator dies before the task ran
    second, _ = make_dispatcher(tmp_path)
    got: list = []
    second.submit(job("j"), "codequant.execute", [[{"id": 7}], 0.1], on_success=got.append, on_failure=pytest.fail)
    assert second.inflight["j"].task_id == task_id  # re-attached, not sent again
    worker = start_worker("late")
    try:
        drive(second, lambda: bool(got), timeout=60)
    finally:
        kill_tree(worker)
    assert broker.lrange("probe:started", 0, -1) == [b"7"]  # ran exactly once


def test_a_task_failed_by_a_broker_outage_is_sent_again(broker: redis.Redis, tmp_path: Path) -> None:
    dispatcher, store = make_dispatcher(tmp_path)
    worker = start_worker("a")
    try:
        done: dict[str, str] = {}
        dispatcher.submit(
            {"key": "r", "study_id": "s", "stage": "report"},
            "codequant.report",
            ["r"],
            on_success=lambda r: done.__setitem__("r", r),
            on_failure=pytest.fail,
        )
        drive(dispatcher, lambda: "r" in done, timeout=60)
    finally:
        kill_tree(worker)
    assert done == {"r": "r"} and int(broker.get("probe:flaky:r")) == 2
    with store.session() as session:
        assert session.get(Job, "r").attempts == 2
