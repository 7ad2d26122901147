"""``generate_variant``: the generate stage, called by the Celery tasks and by the embedded runner alike.

Completions are stored as they arrive, keyed deterministically, so a request delivered again (worker crash,
broker restart) only generates what is missing. Without an endpoint the variant's folder is served here, once
for all the request's benchmarks (``codequant serve`` as a subprocess: needs codequant-serving installed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from importlib import metadata
from typing import Any

from codequant.environment import describe
from codequant.errors import ServiceError
from codequant.launch import Server, resolve_server, running_server, vllm_executable
from codequant.payloads import GenerateRequest, GenerateResult
from codequant.results import completion_row, sample_keys
from codequant.store import ChatAnswer, Completion, Store
from codequant.study.methods import EndpointSpec, method_packages
from codequant_generator.api import generate_completions
from codequant_generator.serving_cost import CostLog, record_cost, server_measurements

_FLUSH_EVERY = 32
#: Requests in flight to a server started here (its batch holds 32 samples; more wait in its queue, so a finished
#: row is refilled at once). Every sample has its own seed, so the samples do not depend on what else is decoded
#: (docs/performance.md, issue 22). An external endpoint gets the generator's default.
SELF_SERVED_CONCURRENCY = 16
PACKAGES = ("codequant-generator", "huggingface_hub", "openai", "httpx")
#: What a self-served variant's samples also depend on, beside the methods' serving libraries (``method_packages``).
SERVING_PACKAGES = ("codequant-serving", "torch", "transformers")


@contextlib.contextmanager
def variant_endpoint(request: GenerateRequest, server: Server = "codequant") -> Iterator[EndpointSpec]:
    """The request's external endpoint, or ``server`` started here on its model folder for the block's duration."""
    if request.endpoint is not None:
        yield request.endpoint
        return
    if server == "codequant":
        try:
            metadata.version("codequant-serving")
        except metadata.PackageNotFoundError:
            raise ServiceError(
                "this generate worker cannot serve models itself (codequant-serving is not installed); "
                "give the variant an endpoint"
            ) from None
    if request.model is None:
        raise ServiceError(f"variant {request.variant_key}: no endpoint and no model folder to serve")
    with running_server(request.model, server=server, dtype=request.model_dtype) as url:
        yield EndpointSpec(url=url, api="openai")


def model_server(request: GenerateRequest) -> tuple[Server | None, str]:
    """Which server samples the request's variant here (None: its endpoint), and how the report names it."""
    if request.endpoint is not None:
        return None, f"external endpoint ({request.endpoint.api})"
    server = resolve_server(request.server)
    if server == "vllm":
        return server, f"vLLM ({vllm_executable()})"
    return server, "codequant serve (transformers)"


def generate_variant(
    request: GenerateRequest,
    *,
    store: Store | None = None,
    progress: Callable[[int], None] | None = None,
    detail: Callable[[str], None] | None = None,
    job: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> GenerateResult:
    """Sample every completion of the variant that the store lacks, on each benchmark of the request.

    ``progress(k)``: k more completions stored (including those found stored); ``detail``: what is happening;
    ``job(benchmark)``: a context wrapped around the generation of each benchmark with missing completions
    (the runner's bookkeeping).
    """
    store = store or Store(request.store_url)
    say = detail or (lambda _text: None)
    advance = progress or (lambda _count: None)
    pending: list[tuple[Any, dict[tuple[str, int], str]]] = []
    stored_before: dict[str, int] = {}
    for spec in request.benchmarks:
        loaded = spec.load()
        problems = (p.name for p in loaded.problems)
        keys = sample_keys(request.variant_key, spec.name, problems, request.sampling[spec.name])
        stored = store.existing_keys(Completion, keys.values())
        stored_before[spec.name] = len(stored)
        advance(len(stored))
        missing = {pair: key for pair, key in keys.items() if key not in stored}
        if missing:
            pending.append((loaded, missing))
    generated = {name: 0 for name in stored_before}
    server, server_name = model_server(request)
    if pending:
        say(f"starting {server_name}" if server else f"connecting to {request.endpoint.url}")
        cost = CostLog()
        with variant_endpoint(request, server or "codequant") as endpoint:
            for loaded, missing in pending:
                say(f"on {loaded.name}")
                with job(loaded.name) if job else contextlib.nullcontext():
                    generated[loaded.name] = _generate(request, store, loaded, missing, endpoint, advance, cost)
            say("measuring memory and held-out perplexity")
            measured = server_measurements(endpoint.url)
        record_cost(store, request.variant_key, server_name, cost, measured)
    packages = PACKAGES + (SERVING_PACKAGES + method_packages("serve") if server == "codequant" else ())
    environment = {**describe(packages), "model_server": server_name}
    return GenerateResult(generated=generated, stored_before=stored_before, environment=environment)


def _generate(
    request: GenerateRequest,
    store: Store,
    loaded: Any,
    missing: dict[tuple[str, int], str],
    endpoint: EndpointSpec,
    advance: Callable[[int], None],
    cost: CostLog,
) -> int:
    sampling = request.sampling[loaded.name]
    buffer: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []

    def flush() -> None:
        store.insert_ignore(Completion, buffer)
        store.insert_ignore(ChatAnswer, answers)
        advance(len(buffer))
        buffer.clear()
        answers.clear()

    def on_record(record: dict[str, Any]) -> None:
        key = missing[(record["name"], record["sample"])]
        buffer.append(completion_row(request.variant_key, loaded.name, key, record))
        if "extracted" in record:  # instruct mode: keep the whole answer the code was extracted from
            answers.append({"key": key, "answer": record["raw_completion"], "extracted": record["extracted"]})
        if len(buffer) >= _FLUSH_EVERY:
            flush()

    wanted = {name for name, _ in missing}
    cost.start()
    generate_completions(
        [p for p in loaded.problems if p.name in wanted],
        endpoint,
        n=sampling.n,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_new_tokens=sampling.max_new_tokens,
        seed=sampling.seed,
        prompt_mode=sampling.prompt_mode,
        response_prefix=sampling.response_prefix,
        skip=lambda name, sample: (name, sample) not in missing,
        on_record=on_record,
        on_request=cost.on_request,
        **({"concurrency": SELF_SERVED_CONCURRENCY} if request.endpoint is None else {}),
    )
    cost.stop()
    cost.samples += len(missing)
    flush()
    return len(missing)
