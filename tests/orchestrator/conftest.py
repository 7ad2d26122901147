"""Fixtures of the orchestrator tests that need a private Redis and workers for every queue."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from codequant.launch import free_port
from codequant.queues import QUEUES
from tests.orchestrator.cluster import Cluster, Redis


@pytest.fixture
def redis() -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian package redis-server)")
    server = Redis(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cluster(redis: Redis, tiny_model: Path) -> Iterator[Cluster]:
    nodes = Cluster(redis)
    for queue in QUEUES:
        nodes.start_worker(queue)
    yield nodes
    nodes.close()
