"""Celery task of the `generate` queue: sample a variant on one benchmark into the results store.

Completions are stored as they arrive, keyed deterministically, so a task delivered again (worker
crash, broker restart) only generates what is missing. Without an `endpoint`, the worker serves the
variant's model itself (it needs codequant-serving and, for real models, a GPU).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from codequant.benchmarks import load_benchmark
from codequant.celery_app import app
from codequant.errors import ServiceError
from codequant.keys import completion_key
from codequant.queues import TASK_NAMES
from codequant.store import Completion, Store
from codequant_generator.api import Endpoint, generate_completions

_FLUSH_EVERY = 32


@contextlib.contextmanager
def _endpoint(payload: dict[str, Any]) -> Iterator[Endpoint]:
    if payload.get("endpoint"):
        yield Endpoint(**payload["endpoint"])
        return
    try:
        from codequant_serving.launch import running_server
    except ImportError:
        raise ServiceError(
            "this generate worker cannot serve models itself (codequant-serving is not installed); "
            "give the variant an endpoint"
        ) from None
    with running_server(payload["model"], dtype=payload.get("model_dtype", "auto")) as url:
        yield Endpoint(url, "openai")


@app.task(name=TASK_NAMES["generate"], acks_late=True, reject_on_worker_lost=True)
def generate_task(payload: dict[str, Any]) -> dict[str, int]:
    """payload: study_id, variant_key, benchmark (BenchmarkSpec as dict), endpoint (dict or None), model,
    model_dtype, sampling {n, temperature, top_p, max_new_tokens, seed}, store_url. Returns counts."""
    spec = payload["benchmark"]
    sampling = payload["sampling"]
    loaded = load_benchmark(
        spec["name"],
        exclude_humaneval_overlap=spec.get("exclude_humaneval_overlap", False),
        problems=spec.get("problems"),
        limit=spec.get("limit"),
    )
    key_of = {k: v for k, v in sampling.items() if k != "n"}
    keys = {
        (p.name, s): completion_key(payload["variant_key"], spec["name"], p.name, s, key_of)
        for p in loaded.problems
        for s in range(sampling["n"])
    }
    store = Store(payload["store_url"])
    stored = store.existing_keys(Completion, keys.values())
    missing = {pair for pair, key in keys.items() if key not in stored}
    if not missing:
        return {"generated": 0, "stored_before": len(stored)}
    buffer: list[dict[str, Any]] = []

    def on_record(record: dict[str, Any]) -> None:
        buffer.append(
            {
                "key": keys[(record["name"], record["sample"])],
                "variant_key": payload["variant_key"],
                "benchmark": spec["name"],
                "problem": record["name"],
                "sample": record["sample"],
                "completion": record["completion"],
                "finish_reason": record["finish_reason"],
                "prompt_tokens": record["prompt_tokens"],
                "completion_tokens": record["completion_tokens"],
                "latency_s": record["latency_s"],
            }
        )
        if len(buffer) >= _FLUSH_EVERY:
            store.insert_ignore(Completion, buffer)
            buffer.clear()

    with _endpoint(payload) as endpoint:
        generate_completions(
            loaded.problems,
            endpoint,
            n=sampling["n"],
            temperature=sampling["temperature"],
            top_p=sampling["top_p"],
            max_new_tokens=sampling["max_new_tokens"],
            seed=sampling["seed"],
            skip=lambda name, sample: (name, sample) not in missing,
            on_record=on_record,
        )
    store.insert_ignore(Completion, buffer)
    return {"generated": len(missing), "stored_before": len(stored)}
