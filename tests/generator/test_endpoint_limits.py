"""What harness users hit: n above what one request (or the server's batch) holds, and a server that accepts the
connection and never answers — against a real `codequant serve` and a real socket server."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codequant.benchmarks import load_benchmark
from codequant.errors import ServiceError
from codequant.launch import running_server
from codequant.study.methods import EndpointSpec
from codequant_generator.api import RequestWatch, SampleRequest, generate_completions, sample_requests
from codequant_generator.retry import Retry
from tests.cli import codequant

PROBLEM = load_benchmark("humaneval").problems[40]  # one the tiny model never learned: its samples differ


def test_n_is_split_into_requests_that_each_sample_keeps_across_resumption() -> None:
    requests = sample_requests(range(40), 40, 5, per_request=16)
    assert [(r.first, r.count, r.wanted) for r in requests] == [
        (0, 16, tuple(range(16))),
        (16, 16, tuple(range(16, 32))),
        (32, 8, tuple(range(32, 40))),
    ]
    assert requests[0].seed == 5 and len({r.seed for r in requests}) == 3  # the first as without splitting
    # Resuming samples 3 and 20: their whole requests again, with the same seeds, keeping only what is missing.
    resumed = sample_requests([20, 3], 40, 5, per_request=16)
    assert [(r.first, r.count, r.seed, r.wanted) for r in resumed] == [
        (0, 16, requests[0].seed, (3,)),
        (16, 16, requests[1].seed, (20,)),
    ]
    # A problem whose n fits in one request is requested as before: all n with the study's seed.
    assert sample_requests(range(20), 20, 5, per_request=32)[0] == SampleRequest(0, 20, 5, tuple(range(20)))
    # TGI: one sample per request, sample i seeded seed + i (as always).
    assert [(r.first, r.count, r.seed) for r in sample_requests([0, 7], 40, 5, per_request=16, per_sample=True)] == [
        (0, 1, 5),
        (7, 1, 12),
    ]


@pytest.fixture(scope="module")
def small_batch_server(tiny_model: Path) -> Iterator[str]:
    """`codequant serve` that decodes at most 8 sequences at once."""
    with running_server(str(tiny_model), max_batch_size=8) as url:
        yield url


def _sample(url: str, missing: set[int] | None = None) -> tuple[list[dict], int]:
    """The records of 40 samples of PROBLEM (or only the ``missing`` ones) and how many requests were sent."""
    records: list[dict] = []
    sent: list[float] = []
    generate_completions(
        [PROBLEM],
        EndpointSpec(url=url, api="openai", samples_per_request=16),
        n=40,
        temperature=1.5,
        top_p=1.0,
        max_new_tokens=12,
        seed=3,
        skip=(lambda _name, sample: sample not in missing) if missing is not None else None,
        on_record=records.append,
        on_request=lambda latency, _tokens: sent.append(latency),
        concurrency=2,
    )
    return sorted(records, key=lambda r: r["sample"]), len(sent)


@pytest.mark.slow  # serves the tiny model
def test_forty_samples_from_a_server_with_a_batch_of_eight(small_batch_server: str) -> None:
    records, requests = _sample(small_batch_server)
    assert [r["sample"] for r in records] == list(range(40)) and requests == 3
    texts = [r["raw_completion"] for r in records]
    assert texts[16:24] != texts[:8] and texts[32:] != texts[:8]  # other seeds, not the first request repeated
    # Resumed after losing samples 5, 20 and 39: one request per run they belong to, the same samples again.
    again, requests = _sample(small_batch_server, missing={5, 20, 39})
    assert [r["sample"] for r in again] == [5, 20, 39] and requests == 3
    assert [r["raw_completion"] for r in again] == [texts[5], texts[20], texts[39]]


@pytest.mark.slow  # serves the tiny model
def test_the_command_samples_more_than_the_server_batch(small_batch_server: str, tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    args = ["generate", "--endpoint", small_batch_server, "--api", "openai", "--benchmark", "humaneval", "--limit", "1"]
    result = codequant(*args, "--n", "40", "--max-new-tokens", "8", "--out", out, timeout=600)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(line)["sample"] for line in out.read_text().splitlines()) == list(range(40))


class SilentServer:
    """A TCP server that accepts every connection, reads what it is sent, and never answers."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)  # kept open, never written to

    def close(self) -> None:
        self.closed.set()
        self.socket.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("api", ["openai", "tgi"])
def test_a_server_that_never_answers_ends_in_a_clear_error(silent: SilentServer, tmp_path: Path, api: str) -> None:
    out = tmp_path / "c.jsonl"
    start = time.monotonic()
    args = ["generate", "--endpoint", silent.url, "--api", api, "--benchmark", "humaneval", "--limit", "1"]
    result = codequant(*args, "--request-timeout", "1", "--retries", "2", "--out", out, timeout=120)
    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"error: GET http://127\.0\.0\.1:\d+/\S*: no answer within 1 s, 2 attempt\(s\)", last), last
    assert "--request-timeout" in last and "Traceback" not in result.stderr
    assert time.monotonic() - start < 60 and not out.exists()


def test_progress_shows_the_requests_waiting(silent: SilentServer) -> None:
    watch = RequestWatch()
    failure: list[BaseException] = []

    def sample() -> None:
        try:
            generate_completions(
                [PROBLEM],
                EndpointSpec(url=silent.url, api="openai", request_timeout_s=3),
                n=1,
                temperature=0.2,
                top_p=0.95,
                max_new_tokens=8,
                seed=0,
                on_record=lambda _record: None,
                retry=Retry(attempts=2, first_delay_s=0.1),
                watch=watch,
            )
        except BaseException as exc:  # kept for the assertion below
            failure.append(exc)

    thread = threading.Thread(target=sample)
    thread.start()
    seen: set[str] = set()
    while thread.is_alive():
        seen.add(watch.waiting(after_s=1))
        time.sleep(0.2)
    thread.join()
    assert any(re.fullmatch(r"waiting \d s for 1 request\(s\)", text) for text in seen), seen
    assert any("retry 1/1 in 0.1 s after no answer within 3 s" in text for text in seen), seen
    assert len(failure) == 1 and isinstance(failure[0], ServiceError) and "no answer within 3 s" in str(failure[0])
