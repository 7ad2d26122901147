"""Cancelling a study the API runs on Celery workers: real workers for every queue over a private Redis."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import redis as redis_client
from sqlalchemy import func, select

from codequant.celery_app import create_app as celery_app
from codequant.queues import QUEUES
from codequant.store import Job
from codequant_orchestrator.api import create_app
from codequant_orchestrator.api.auth import Tokens
from tests.orchestrator.api_server import TOKEN, Api, serving
from tests.orchestrator.cluster import Cluster, Redis, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]
STUDY = """\
name: distributed-cancel
models:
  - name: tiny
    builtin: {kind: tiny-code, profile: test}
    variants:
      - {name: fp32, method: baseline}
      - {name: rtn-4bit, method: rtn, bits: 4, group_size: 64}
benchmarks:
  - {name: humaneval, limit: 16, max_new_tokens: 200}
sampling: {n: 6, seed: 3}
statistics: {bootstrap_samples: 200}
"""
TOTAL = 2 * 16 * 6


def model_servers(worker: subprocess.Popen) -> list[str]:
    """Command lines of the model servers running in a worker's process group."""
    table = subprocess.run(["ps", "-ww", "-eo", "pgid=,args="], capture_output=True, text=True, check=True).stdout
    rows = (line.strip().split(None, 1) for line in table.splitlines() if line.strip())
    return [args for pgid, *rest in rows for args in rest if int(pgid) == worker.pid and " serve --model" in args]


def nothing_active(broker: str) -> bool:
    active = celery_app(broker).control.inspect(timeout=2.0).active()
    return active is not None and not any(active.values())


def test_cancelling_withdraws_queued_and_running_tasks_and_a_resubmit_resumes(
    cluster: Cluster, redis: Redis, tmp_path: Path
) -> None:
    app = create_app(
        store_url=f"sqlite:///{tmp_path / 'api.db'}",
        distributed=True,
        broker_url=redis.url,
        output_root=tmp_path / "runs",
        tokens=Tokens(TOKEN),
    )
    with serving(app) as api:
        assert api.submit(STUDY).status_code == 202
        wait_for(lambda: 0 < len(api.completions("distributed-cancel")) < TOTAL, 600, "generation never started")
        assert model_servers(cluster.workers["generate"])  # the generate task serves the variant now
        response = api.client.delete("/studies/distributed-cancel")
        assert response.status_code == 202 and response.json()["status"] == "cancelling"
        api.wait_status("distributed-cancel", ("cancelled",), timeout=120)
        assert_withdrawn(api, cluster, redis)
        kept = api.completions("distributed-cancel")
        time.sleep(5)  # the generate task was stopped where it ran: nothing more arrives
        assert api.completions("distributed-cancel") == kept and 0 < len(kept) < TOTAL

        sampled = api.sampled("distributed-cancel")
        assert api.submit(STUDY).status_code == 202
        assert api.wait_status("distributed-cancel", ("done", "failed"), timeout=900)["status"] == "done"
        finished = api.completions("distributed-cancel")
        assert len(finished) == TOTAL and all(finished[key] == created for key, created in kept.items())
        assert api.executed("distributed-cancel") == TOTAL
        assert api.sampled("distributed-cancel") - sampled == TOTAL - len(kept)  # resumed: only the missing ones


def assert_withdrawn(api: Api, cluster: Cluster, redis: Redis) -> None:
    """No task of the study is queued, held by a worker or running, no model server is left, no job is running."""
    client = redis_client.Redis.from_url(redis.url)
    assert {queue: client.llen(queue) for queue in QUEUES} == dict.fromkeys(QUEUES, 0)
    wait_for(lambda: nothing_active(redis.url), 60, "a worker still runs a task of the cancelled study")
    wait_for(lambda: not model_servers(cluster.workers["generate"]), 60, "the model server outlived its task")
    with api.store.session() as session:
        states = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    assert "running" not in states and states.get("cancelled", 0) >= 1, states
