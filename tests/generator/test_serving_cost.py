"""The cost of serving a variant, measured while its completions are generated and stored per variant."""

from __future__ import annotations

import http.server
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from codequant.heldout import NAME
from codequant.payloads import GenerateRequest
from codequant.store import Completion, ServingMeasurement, Store, Variant
from codequant.study.spec import BenchmarkSpec, SamplingParams
from codequant_generator.serving_cost import server_measurements
from codequant_generator.stage import generate_variant


def _request(store_url: str, tiny_model: Path, limit: int) -> GenerateRequest:
    spec = BenchmarkSpec(name="humaneval", limit=limit)
    sampling = SamplingParams(n=3, temperature=0.8, top_p=0.95, max_new_tokens=24)
    return GenerateRequest(
        study_id="s", variant_key="v", benchmarks=[spec], sampling={"humaneval": sampling}, model=str(tiny_model),
        server="codequant", store_url=store_url,
    )  # fmt: skip


def test_a_self_served_variant_records_tokens_latency_memory_and_perplexity(tiny_model: Path, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(store_url)
    store.insert_ignore(Variant, [{"key": "v", "model_name": "tiny", "variant_name": "base", "method": "baseline"}])
    assert generate_variant(_request(store_url, tiny_model, 2)).generated == {"humaneval": 6}
    with store.session() as session:
        row = session.get(ServingMeasurement, "v")
        tokens = list(session.scalars(select(Completion.completion_tokens)))
    # n=3 samples per request: each sample still has its own token count (the server says it per choice).
    assert len(tokens) == 6 and all(t is not None and 1 <= t <= 24 for t in tokens)
    assert row.server == "codequant serve (transformers)"
    assert (row.requests, row.samples, row.completion_tokens) == (2, 6, sum(tokens))
    assert len(row.latencies_s) == 2 and all(0 < s < row.generation_s for s in row.latencies_s)
    assert row.memory["source"].startswith("process peak RSS") and row.memory["peak_bytes"] > row.memory["model_bytes"]
    assert row.perplexity_set == NAME and row.perplexity_tokens > 2000 and math.isfinite(row.perplexity)
    assert row.note is None

    # Resumed with a third problem: the new request is added to what was counted before.
    assert generate_variant(_request(store_url, tiny_model, 3)).generated == {"humaneval": 3}
    with store.session() as session:
        again = session.get(ServingMeasurement, "v")
        tokens = list(session.scalars(select(Completion.completion_tokens)))
    assert (again.requests, again.samples, again.completion_tokens) == (3, 9, sum(tokens))
    assert again.latencies_s[:2] == row.latencies_s and again.generation_s > row.generation_s
    assert again.perplexity == pytest.approx(row.perplexity)  # same weights, same held-out set


@pytest.fixture
def plain_http(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server that is not codequant serve (it answers 404 to /codequant/...)."""
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    thread.join()


def test_an_endpoint_without_the_routes_gives_a_note_not_an_error(plain_http: str) -> None:
    assert server_measurements(plain_http) == {"note": "the endpoint has no /codequant routes (not codequant serve)"}
    assert server_measurements("http://127.0.0.1:9")["note"].startswith("cannot measure the server: ")
