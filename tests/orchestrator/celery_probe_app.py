"""A Celery app for testing the dispatcher's mechanics with real Redis and real worker processes.

Its `codequant.execute` task only sleeps and echoes (the real executor task is covered by the
end-to-end fault tests); it records every run in Redis so tests can count executions.
"""

from __future__ import annotations

import os
import time

import redis

from codequant.celery_app import create_app

BROKER = os.environ.get("CODEQUANT_PROBE_BROKER", "redis://127.0.0.1:6379/14")
app = create_app(BROKER)
app.conf.imports = []


@app.task(name="codequant.execute")
def probe(records: list[dict], seconds: float) -> list[dict]:
    client = redis.Redis.from_url(BROKER)
    for record in records:
        client.rpush("probe:started", record["id"])
    time.sleep(seconds)
    for record in records:
        client.rpush("probe:finished", record["id"])
    return [{**record, "done": True} for record in records]


@app.task(name="codequant.report")
def flaky(key: str) -> str:
    """Raises a Redis connection error on its first run (as a worker losing Redis mid-task does), then succeeds."""
    client = redis.Redis.from_url(BROKER)
    if client.incr(f"probe:flaky:{key}") == 1:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    return key
