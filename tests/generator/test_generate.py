"""`codequant generate` against a real `codequant serve`: both APIs, resumption, retries, clear failures."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from codequant.benchmarks import load_benchmark
from codequant.errors import InputError, ServiceError
from codequant.launch import free_port
from codequant.study.methods import EndpointSpec
from codequant_generator.api import cut_at_stop, generate_completions
from codequant_generator.retry import Retry
from tests.cli import CLI, codequant

GENERATE = [*CLI, "generate"]
PROBLEMS = load_benchmark("humaneval", limit=3).problems


def test_cut_at_stop() -> None:
    assert cut_at_stop("    return 1\ndef g():\n#x", ["\ndef", "\n#"]) == "    return 1"
    assert cut_at_stop("    return 1\n", ["\ndef"]) == "    return 1\n"
    assert cut_at_stop("a\n    }\nb", ["\n    }\n"]) == "a"


@pytest.mark.slow  # serves the tiny model
@pytest.mark.parametrize("api", ["openai", "tgi"])
def test_both_apis_give_n_records_per_problem(server: str, api: str) -> None:
    records: list[dict] = []
    requests: list[tuple[float, int | None]] = []
    generate_completions(
        PROBLEMS,
        EndpointSpec(url=server, api=api),
        n=3,
        temperature=0.2,
        top_p=0.95,
        max_new_tokens=200,
        seed=1,
        on_record=records.append,
        on_request=lambda latency, tokens: requests.append((latency, tokens)),
        concurrency=3,
    )
    assert sorted((r["name"], r["sample"]) for r in records) == sorted((p.name, s) for p in PROBLEMS for s in range(3))
    # The cost hook sees each HTTP request once: one per sample for TGI, one per problem (n=3) for OpenAI, with the
    # tokens of all the samples it generated.
    assert len(requests) == len(PROBLEMS) * (3 if api == "tgi" else 1) and all(t > 0 for t, _ in requests)
    assert sum(tokens for _, tokens in requests) == sum(r["completion_tokens"] for r in records)
    for record in records:
        problem = next(p for p in PROBLEMS if p.name == record["name"])
        assert not any(stop in record["completion"] for stop in problem.stop_tokens)
        assert record["raw_completion"].startswith(record["completion"]) and record["latency_s"] > 0
        assert record["language"] == "python" and record["benchmark"] == "humaneval"


@pytest.mark.slow  # serves the tiny model
def test_cli_resumes_and_keeps_existing_records(server: str, tmp_path: Path) -> None:
    out = tmp_path / "completions.jsonl"
    kept = {"name": PROBLEMS[0].name, "sample": 0, "completion": "KEPT", "language": "python"}
    out.write_text(json.dumps(kept) + "\n" + '{"name": "truncated by a cr')  # a crash mid-line
    args = [
        *GENERATE,
        "--endpoint",
        server,
        "--api",
        "openai",
        "--benchmark",
        "humaneval",
        "--limit",
        "2",
        "--n",
        "2",
        "--max-new-tokens",
        "150",
        "--out",
        str(out),
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0] == kept
    assert sorted((r["name"], r["sample"]) for r in records) == sorted(
        (p.name, s) for p in PROBLEMS[:2] for s in range(2)
    )
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and out.read_text().count("\n") == 4  # nothing generated twice


def test_unreachable_endpoint_is_a_one_line_failure(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceError, match="unreachable after 2 attempt"):
        generate_completions(
            PROBLEMS,
            EndpointSpec(url=url, api="tgi"),
            n=1,
            temperature=0.2,
            top_p=0.95,
            max_new_tokens=10,
            seed=0,
            on_record=lambda r: None,
            retry=Retry(attempts=2, first_delay_s=0.1),
        )
    result = codequant(
        "generate",
        "--endpoint",
        url,
        "--benchmark",
        "humaneval",
        "--limit",
        "1",
        "--retries",
        "1",
        "--out",
        str(tmp_path / "x.jsonl"),
        timeout=120,
    )
    assert result.returncode == 3
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr


@pytest.mark.slow  # serves the tiny model
def test_a_model_the_endpoint_does_not_serve_is_rejected(server: str) -> None:
    with pytest.raises(InputError, match="does not serve model 'nope'"):
        generate_completions(
            PROBLEMS,
            EndpointSpec(url=server, api="openai", model="nope"),
            n=1,
            temperature=0.2,
            top_p=0.95,
            max_new_tokens=10,
            seed=0,
            on_record=lambda r: None,
        )


@pytest.mark.slow  # serves the tiny model
def test_5xx_answers_are_retried(server: str) -> None:
    """A proxy that answers 503 to the first two generation requests, then forwards to the real server."""
    failures = {"left": 2}

    class Flaky(BaseHTTPRequestHandler):
        def _forward(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            if method == "POST" and failures["left"] > 0:
                failures["left"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            upstream = httpx.request(
                method, f"{server}{self.path}", content=body, headers={"Content-Type": "application/json"}, timeout=120
            )
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", upstream.headers.get("content-type", "application/json"))
            self.end_headers()
            self.wfile.write(upstream.content)

        def do_GET(self) -> None:
            self._forward("GET")

        def do_POST(self) -> None:
            self._forward("POST")

        def log_message(self, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        records: list[dict] = []
        generate_completions(
            PROBLEMS[:1],
            EndpointSpec(url=f"http://127.0.0.1:{proxy.server_port}", api="openai"),
            n=2,
            temperature=0.2,
            top_p=0.95,
            max_new_tokens=50,
            seed=0,
            on_record=records.append,
            retry=Retry(attempts=4, first_delay_s=0.05),
        )
    finally:
        proxy.shutdown()
    assert failures["left"] == 0 and len(records) == 2
