"""The HTTP API as the compose stack publishes it: the bad requests of tests/orchestrator/api_cases.py (which the
in-process tests in tests/orchestrator/test_api.py send too) sent to the running orchestrator container, and a
study cancelled through it.

Slow (it uses the compose stack of tests/deploy); skipped, with the engine's error, where no engine can start.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.stack import Stack
from tests.orchestrator import api_cases

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def anyone(stack: Stack) -> Iterator[httpx.Client]:
    """A client of the published port without a token."""
    with httpx.Client(base_url=stack.api_url, timeout=120) as client:
        yield client


@pytest.mark.parametrize("case", api_cases.UNAUTHORIZED, ids=lambda c: c.id)
def test_every_route_but_health_and_the_page_needs_a_token(anyone: httpx.Client, case: api_cases.Unauthorized) -> None:
    response = anyone.request(case.method, case.path, headers=case.headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "token" in response.json()["detail"]


def test_health_and_the_dashboard_page_are_open(anyone: httpx.Client) -> None:
    assert [anyone.get(path).status_code for path in api_cases.PUBLIC] == [200] * len(api_cases.PUBLIC)


def test_bad_studies_get_a_json_error_and_nothing_is_stored(stack: Stack, anyone: httpx.Client) -> None:
    failed = {}
    for case in api_cases.BAD_STUDIES:
        try:
            api_cases.check(case, api_cases.send(anyone, case, stack.token))
            assert stack.api("GET", f"/studies/{case.name}").status_code == 404
        except AssertionError as exc:
            failed[case.id] = str(exc)
    assert not failed, failed
    # Nothing half-stored: no row in the store, no folder under the artifacts volume.
    names = ", ".join(f"'{case.name}'" for case in api_cases.BAD_STUDIES)
    assert stack.count("studies", f"id IN ({names})") == 0
    assert stack.count("jobs", f"study_id IN ({names})") == 0
    folders = stack.exec("orchestrator", "ls", "-A", "/data/runs").stdout.split()
    assert not [name for name in folders if name.startswith("bad-")], folders


def generating(progress: dict) -> bool:
    """Whether a study has stored some of its completions, not all (or has ended)."""
    generate = progress["stages"]["generate"]
    return 0 < generate["done"] < generate["total"] or progress["status"] not in ("pending", "running")


def test_a_study_is_cancelled_through_the_api(stack: Stack, tiny_model_in_stack: Path) -> None:
    # Its own sampling seed: none of its work is stored yet, and its completions are no other test's; enough of
    # them to be cancelled while the serving worker generates (with 16 requests in flight, 160 completions were
    # all stored before the cancellation reached the worker).
    changes = {"limit: 1": "limit: 100", "max_new_tokens: 32": "max_new_tokens: 128", "{n: 1}": "{n: 8, seed: 5}"}
    running = stack.submit(api_cases.valid("compose-cancel", **changes))
    queued = stack.submit(api_cases.valid("compose-cancel-queued"))
    # A study waiting behind another is cancelled at once and never runs.
    response = stack.api("DELETE", f"/studies/{queued}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled", response.text
    deadline = time.monotonic() + 300
    while not generating(stack.api("GET", f"/studies/{running}/progress").json()):
        assert time.monotonic() < deadline, stack.diagnosis()
        time.sleep(0.2)
    response = stack.api("DELETE", f"/studies/{running}")
    assert response.status_code == 202 and response.json()["status"] == "cancelling", response.text
    progress = stack.follow(running, timeout=120, until=("cancelled", "done", "failed"))
    assert progress["status"] == "cancelled", progress
    # Stopped where it was: its work so far kept, no job left running, none of its tasks queued, nothing stored
    # after it was cancelled.
    completions = (
        f"variant_key IN (SELECT variant_key FROM study_variants WHERE study_id = '{running}')"
        f" AND created_at >= (SELECT created_at FROM studies WHERE id = '{running}')"
    )
    stored = stack.count("completions", completions)
    assert 0 < stored < progress["stages"]["generate"]["total"], progress
    assert stack.count("jobs", f"study_id = '{running}' AND status = 'running'") == 0
    assert stack.count("jobs", f"study_id = '{queued}'") == 0
    time.sleep(3)
    assert stack.count("completions", completions) == stored
    assert [stack.redis("LLEN", queue) for queue in ("quantize", "generate", "execute", "report")] == ["0"] * 4
    assert stack.api("DELETE", f"/studies/{running}").status_code == 200  # cancelled already
