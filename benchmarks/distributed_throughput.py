"""Execution throughput through the distributed path (Celery over Redis, real `codequant worker execute`
processes) with 1, 2 and 4 worker processes, versus the in-process runner, and the overhead per task.

Programs: HumanEval's canonical solutions and mutants (Python) and McEval Java's canonical solutions and
mutants, sent in chunks as the orchestrator sends them. Verdicts must agree with the in-process run.
The per-task overhead is measured with trivial programs sent one per task to one worker process.

    .venv/bin/python benchmarks/distributed_throughput.py [--concurrency 1 2 4] [--chunk 16]
        [--broker redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from celery.result import AsyncResult

from codequant.benchmarks import load_benchmark
from codequant.celery_app import create_app
from codequant.limits import Limits
from codequant.payloads import ExecuteRequest, ExecuteResult
from codequant.queues import TASK_NAMES
from codequant_executor.api import execute_records

sys.path.insert(0, str(Path(__file__).resolve().parent))
from executor_throughput import mutate


def study_records() -> list[dict]:
    records = []
    for problem in load_benchmark("humaneval").problems + load_benchmark("mceval-java").problems:
        for variant, body in (("ok", problem.canonical_solution), ("mutant", mutate(problem.canonical_solution))):
            records.append(item(f"{problem.name}/{variant}", problem.language, problem.prompt, body, problem.tests))
    return records


def item(name: str, language: str, prompt: str, completion: str, tests: str) -> dict:
    """An execution item as the orchestrator sends it (the program is prompt + completion + newline + tests)."""
    return {
        "name": name,
        "language": language,
        "prompt": prompt,
        "completion": completion,
        "tests": tests,
        "completion_key": name,
    }


def trivial_records(count: int) -> list[dict]:
    return [item(f"t{i}", "python", "", f"assert {i} == {i}", "") for i in range(count)]


def start_worker(broker: str, concurrency: int) -> subprocess.Popen:
    command = [sys.executable, "-c", "from codequant.cli import main; main()", "worker", "execute"]
    command += ["--concurrency", str(concurrency), "--broker", broker, "--loglevel", "WARNING"]
    return subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(app, count: int = 1) -> None:
    deadline = time.monotonic() + 120
    while len(app.control.ping(timeout=1.0) or []) < count:
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not start")


def distributed(app, records: list[dict], chunk: int, limits: dict) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    pending = [
        app.send_task(
            TASK_NAMES["execute"], args=[ExecuteRequest(items=records[i : i + chunk], limits=limits).model_dump()]
        )
        for i in range(0, len(records), chunk)
    ]
    results: list[dict] = []
    for task in pending:
        outcomes = ExecuteResult.model_validate(AsyncResult(task.id, app=app).get(timeout=1800)).outcomes
        results += [{"name": o.completion_key, "passed": o.passed} for o in outcomes]
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--trivial", type=int, default=200)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    limits = Limits()
    records = study_records()
    print(f"{len(records)} programs ({sum(r['language'] == 'java' for r in records)} Java), chunks of {args.chunk}")

    started = time.perf_counter()
    reference = execute_records(records, limits)
    embedded = time.perf_counter() - started
    print(f"in-process runner: {embedded:.1f} s, {len(records) / embedded:.1f} executions/s")
    verdicts = {r["name"]: r["passed"] for r in reference}

    app = create_app(args.broker)
    for concurrency in args.concurrency:
        worker = start_worker(args.broker, concurrency)
        try:
            wait_ready(app)
            seconds, results = distributed(app, records, args.chunk, limits.as_key())
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait()
        disagree = [r["name"] for r in results if verdicts[r["name"]] != r["passed"]]
        print(
            f"distributed, {concurrency} worker process(es): {seconds:.1f} s, "
            f"{len(records) / seconds:.1f} executions/s, {len(disagree)} verdicts differ"
        )

    trivial = trivial_records(args.trivial)
    started = time.perf_counter()
    execute_records(trivial, limits, workers=1)
    alone = time.perf_counter() - started
    worker = start_worker(args.broker, 1)
    try:
        wait_ready(app)
        seconds, _ = distributed(app, trivial, 1, limits.as_key())
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait()
    print(
        f"overhead per task (one trivial program per task, 1 worker process): "
        f"{(seconds - alone) / len(trivial) * 1000:.1f} ms ({alone / len(trivial) * 1000:.1f} ms to run one alone)"
    )


if __name__ == "__main__":
    main()
