"""Adding a generation protocol is one module: a toy protocol registered from this test alone is a name studies
accept, and the generator samples through its client; an unknown name is an error listing the known ones."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from codequant.benchmarks import load_benchmark
from codequant.protocols import GenerationApi, api_names
from codequant.study import StudyError, parse_study
from codequant.study.methods import EndpointSpec
from codequant_generator.api import generate_completions
from codequant_generator.clients import Client, OnRequest, Sample, register_client, unregister_client

PROBLEMS = load_benchmark("humaneval", limit=2).problems
STUDY = """\
name: toy
models:
  - name: m
    builtin: tiny-code
    variants:
      - {name: remote, method: baseline, endpoint: {url: 'http://127.0.0.1:9', api: API}}
benchmarks: [BENCHMARK]
"""


class _Echo(BaseHTTPRequestHandler):
    """The toy protocol's server: POST /complete {"prompt", "seed"} -> {"text"}; GET /health."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = json.dumps({"text": f"    return {body['seed']}\ndef extra(): pass\n"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        pass


def define_toy_protocol() -> type[Client]:
    """The toy protocol's module, as a file would hold it: defining the client registers the protocol."""

    @register_client(GenerationApi("toy-echo", key_env="TOY_ECHO_KEY"))
    class EchoClient(Client):
        per_sample = True

        def check(self) -> None:
            url = f"{self.endpoint.url}/health"
            self._call(f"GET {url}", lambda: httpx.get(url, timeout=5).raise_for_status())

        def sample(
            self,
            prompt: str | list[dict[str, str]],
            *,
            n: int,
            temperature: float,
            top_p: float,
            max_new_tokens: int,
            stop: list[str],
            seed: int,
            on_request: OnRequest | None = None,
        ) -> list[Sample]:
            start = time.monotonic()
            url = f"{self.endpoint.url}/complete"
            reply = self._call(f"POST {url}", lambda: httpx.post(url, json={"prompt": prompt, "seed": seed}, timeout=5))
            latency = time.monotonic() - start
            if on_request is not None:
                on_request(latency, None)
            return [Sample(reply.json()["text"], "length", None, None, latency)]

    return EchoClient


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def toy() -> Iterator[type[Client]]:
    client = define_toy_protocol()
    yield client
    unregister_client("toy-echo")


def test_a_protocol_added_from_test_code_is_accepted_by_studies_and_sampled_through(
    toy: type[Client], echo_server: str
) -> None:
    assert "toy-echo" in api_names()
    study = parse_study(STUDY.replace("API", "toy-echo").replace("BENCHMARK", "humaneval"))
    assert study.models[0].variants[0].endpoint.api == "toy-echo"
    records: list[dict] = []
    endpoint = EndpointSpec(url=echo_server, api="toy-echo")
    generate_completions(
        PROBLEMS, endpoint, n=2, temperature=0.2, top_p=0.95, max_new_tokens=20, seed=7, on_record=records.append
    )
    by_sample = {(r["name"], r["sample"]): r["completion"] for r in records}
    # One request per sample (per_sample), seeded seed + sample; cut at the problem's stop tokens.
    assert by_sample == {(p.name, s): f"    return {7 + s}" for p in PROBLEMS for s in range(2)}
    with pytest.raises(StudyError, match="needs the chat completions API; give its endpoint api: openai or"):
        parse_study(STUDY.replace("API", "toy-echo").replace("BENCHMARK", "{name: humaneval, prompt_mode: instruct}"))


def test_an_unknown_protocol_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(StudyError) as error:
        parse_study(STUDY.replace("API", "toy-echo").replace("BENCHMARK", "humaneval"))
    assert "endpoint.api: must be one of tgi, openai, openai-chat, got 'toy-echo'" in str(error.value)
