"""Hosted endpoints: credentials from the environment (the API's conventional variable, or the one named), 401/403
answered with what to set, 429 + Retry-After honoured with bounded retries, and a concurrency cap per endpoint —
against a real local HTTP server (FastAPI on uvicorn) in front of `codequant serve`."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from codequant.benchmarks import load_benchmark
from codequant.errors import InputError, ServiceError
from codequant.launch import free_port
from codequant.study.methods import EndpointSpec
from codequant_generator.api import generate_completions
from codequant_generator.retry import Retry
from tests.cli import codequant

PROBLEMS = load_benchmark("humaneval", limit=2).problems
KEY_VARIABLES = ("OPENAI_API_KEY", "HF_TOKEN", "CQ_TEST_KEY")


@dataclass
class Gateway:
    """What the gateway saw: rate-limit answers given, request times, headers, most requests in flight."""

    url: str
    limited: int = 0  # 429 answers still to give
    retry_after: str = "1"
    times: list[float] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    key: str | None = None  # when set, requests without "Authorization: Bearer KEY" get 401


@pytest.fixture
def gateway(server: str) -> Iterator[Gateway]:
    """A hosted API in miniature: answers 429 with Retry-After while `limited` > 0, then forwards upstream."""
    app = FastAPI()
    port = free_port()
    state = Gateway(f"http://127.0.0.1:{port}")

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        body = await request.body()
        if state.key is not None and request.headers.get("authorization") != f"Bearer {state.key}":
            return JSONResponse(
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, 401
            )
        if request.method == "POST":
            state.times.append(time.monotonic())
            state.headers.append(dict(request.headers))
            if state.limited > 0:
                state.limited -= 1
                return JSONResponse({"error": "rate limited"}, 429, headers={"Retry-After": state.retry_after})
        state.in_flight += 1
        state.most_in_flight = max(state.most_in_flight, state.in_flight)
        try:
            await asyncio.sleep(0.05)  # so that overlapping requests would be seen overlapping
            async with httpx.AsyncClient(timeout=120) as client:
                answer = await client.request(
                    request.method, f"{server}/{path}", content=body, headers={"content-type": "application/json"}
                )
        finally:
            state.in_flight -= 1
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))

    gateway_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=gateway_server.run, daemon=True)
    thread.start()
    while not gateway_server.started:
        time.sleep(0.05)
    yield state
    gateway_server.should_exit = True
    thread.join(timeout=10)


def _generate(endpoint: EndpointSpec, retry: Retry | None = None, concurrency: int = 4, n: int = 2) -> list[dict]:
    records: list[dict] = []
    generate_completions(
        PROBLEMS,
        endpoint,
        n=n,
        temperature=0.2,
        top_p=0.95,
        max_new_tokens=40,
        seed=0,
        on_record=records.append,
        concurrency=concurrency,
        retry=retry or Retry(attempts=4, first_delay_s=0.05),
    )
    return records


@pytest.mark.parametrize("api", ["openai", "tgi"])
def test_429_waits_as_retry_after_says_and_credentials_come_from_the_environment(
    gateway: Gateway, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CQ_TEST_KEY", "secret-key")
    monkeypatch.setenv("CQ_TEST_ORG", "team-a")
    gateway.limited = 2
    endpoint = EndpointSpec(url=gateway.url, api=api, api_key_env="CQ_TEST_KEY", headers_env={"X-Org": "CQ_TEST_ORG"})
    records = _generate(endpoint, concurrency=1)
    assert len(records) == len(PROBLEMS) * 2 and gateway.limited == 0
    # Each 429 said "retry after 1 s" and the first delay of the backoff is 0.05 s: the waits are Retry-After's.
    assert gateway.times[1] - gateway.times[0] >= 0.95 and gateway.times[2] - gateway.times[1] >= 0.95
    assert {h["authorization"] for h in gateway.headers} == {"Bearer secret-key"}
    assert {h["x-org"] for h in gateway.headers} == {"team-a"}


def test_retries_on_429_are_bounded(gateway: Gateway) -> None:
    gateway.limited, gateway.retry_after = 100, "0"
    with pytest.raises(ServiceError, match=r"still rate limited \(HTTP 429\) after 3 attempts"):
        _generate(EndpointSpec(url=gateway.url, api="openai"), Retry(attempts=3, first_delay_s=0.05), concurrency=1)
    assert len(gateway.times) == 3


def test_a_retry_after_beyond_the_limit_fails_at_once(gateway: Gateway) -> None:
    gateway.limited, gateway.retry_after = 1, "3600"
    start = time.monotonic()
    with pytest.raises(ServiceError, match="retry after 3600 s"):
        _generate(EndpointSpec(url=gateway.url, api="openai"))
    assert time.monotonic() - start < 30


def test_concurrency_is_capped_per_endpoint(gateway: Gateway) -> None:
    # TGI: one request per sample, 4 threads; the endpoint allows one request in flight.
    records = _generate(EndpointSpec(url=gateway.url, api="tgi", max_concurrency=1), concurrency=4, n=3)
    assert len(records) == len(PROBLEMS) * 3 and gateway.most_in_flight == 1


def test_a_missing_credential_is_a_one_line_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CQ_TEST_UNSET", raising=False)
    with pytest.raises(InputError, match="CQ_TEST_UNSET is not set"):
        _generate(EndpointSpec(url="http://127.0.0.1:9", api="openai", api_key_env="CQ_TEST_UNSET"))
    args = ["--endpoint", "http://127.0.0.1:9", "--benchmark", "humaneval", "--out", str(tmp_path / "c.jsonl")]
    result = codequant("generate", *args, "--header-env", "X-Org=CQ_TEST_UNSET", timeout=120)
    assert result.returncode == 2 and "CQ_TEST_UNSET is not set" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "c.jsonl").exists()


@pytest.mark.parametrize(
    ("api", "variable"), [("openai", "OPENAI_API_KEY"), ("openai-chat", "OPENAI_API_KEY"), ("tgi", "HF_TOKEN")]
)
def test_the_apis_conventional_key_variable_is_read(
    gateway: Gateway, api: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "sk-conventional")
    gateway.key = "sk-conventional"
    records = _generate(EndpointSpec(url=gateway.url, api=api))  # no api_key_env
    assert len(records) == len(PROBLEMS) * 2
    assert {h["authorization"] for h in gateway.headers} == {"Bearer sk-conventional"}


@pytest.mark.parametrize(
    ("env", "api_key_env", "hint"),
    [
        (
            {},
            None,
            "no API key was sent: set $OPENAI_API_KEY, or name the variable that holds the key with --api-key-env",
        ),
        ({"OPENAI_API_KEY": "sk-wrong"}, None, "the API key in $OPENAI_API_KEY was refused"),
        ({"CQ_TEST_KEY": "sk-wrong"}, "CQ_TEST_KEY", "the API key in $CQ_TEST_KEY was refused"),
    ],
    ids=["no-key", "wrong-conventional-key", "wrong-named-key"],
)
def test_a_refused_key_is_bad_input_that_says_what_to_set(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict, api_key_env: str | None, hint: str
) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    gateway.key = "sk-right"
    with pytest.raises(InputError, match=re.escape(hint)) as refused:
        _generate(EndpointSpec(url=gateway.url, api="openai", api_key_env=api_key_env))
    assert "HTTP 401" in str(refused.value)
    out = tmp_path / "c.jsonl"
    args = ["--endpoint", gateway.url, "--api", "openai", "--benchmark", "humaneval", "--limit", "1", "--out", str(out)]
    args += ["--api-key-env", api_key_env] if api_key_env else []
    result = codequant("generate", *args, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and hint in lines[0], result.stderr
    assert not out.exists()
