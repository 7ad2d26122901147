"""The HTTP API on a real uvicorn server in a thread of the test process, and a client that carries a token."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from codequant.launch import free_port
from codequant.store import Completion, ServingMeasurement, Store, StudyVariant
from codequant.store import Study as StudyRow
from codequant.study import parse_study
from codequant_orchestrator.plan import plan_study
from codequant_orchestrator.records import wanted_completion_keys

TOKEN = "cq_the-token-of-the-api-tests-0123456789abcdef"


@dataclass
class Api:
    url: str
    client: httpx.Client  # carries the token
    store: Store

    def submit(self, text: str) -> httpx.Response:
        return self.client.post("/studies", content=text, headers={"Content-Type": "application/yaml"})

    def wait_status(self, study: str, statuses: tuple[str, ...], timeout: float = 600) -> dict[str, Any]:
        """The study's progress once its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            progress = self.client.get(f"/studies/{study}/progress").json()
            if progress["status"] in statuses:
                return progress
            assert time.monotonic() < deadline, progress
            time.sleep(0.5)

    def wanted(self, study: str) -> list[str]:
        """The keys of the completions the study needs (other studies may share its variants)."""
        with self.store.session() as session:
            plan = plan_study(parse_study(session.get(StudyRow, study).spec_yaml))
        return [k for v in plan.variants for b in plan.benchmarks for k in wanted_completion_keys(plan, v, b).values()]

    def completions(self, study: str) -> dict[str, Any]:
        """{key: created_at} of the study's stored completions."""
        with self.store.session() as session:
            query = select(Completion.key, Completion.created_at).where(Completion.key.in_(self.wanted(study)))
            return dict(session.execute(query).all())

    def sampled(self, study: str) -> int:
        """Samples the generate stage has counted for the study's variants (each run adds those it generated)."""
        with self.store.session() as session:
            keys = select(StudyVariant.variant_key).where(StudyVariant.study_id == study)
            query = select(func.sum(ServingMeasurement.samples)).where(ServingMeasurement.variant_key.in_(keys))
            return session.scalar(query) or 0

    def executed(self, study: str) -> int:
        """How many of the study's completions have an execution."""
        with self.store.session() as session:
            query = select(func.count(Completion.execution_key)).where(Completion.key.in_(self.wanted(study)))
            return session.scalar(query)


@contextlib.contextmanager
def serving(app: FastAPI, token: str | None = TOKEN) -> Iterator[Api]:
    """Serve ``app`` on a free loopback port until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.1)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        try:
            yield Api(url, client, app.state.store)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
