"""``generate_completions``: sample n completions per problem from an endpoint, cut at the stop tokens, or in
instruct mode answers to an instruction whose code is extracted; ``running_server``: a model server on a free port for
the length of a ``with`` block."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from codequant import instruct
from codequant.benchmarks import Problem
from codequant.errors import InputError
from codequant.extraction import extract
from codequant.keys import stable_hash
from codequant.launch import running_server
from codequant.protocols import chat_api_names, get_api
from codequant.study.methods import EndpointSpec
from codequant_generator.clients import OnRequest, client_for
from codequant_generator.retry import RequestWatch, Retry

__all__ = [
    "RequestWatch",
    "SampleRequest",
    "cut_at_stop",
    "generate_completions",
    "running_server",
    "sample_requests",
]


@dataclass(frozen=True)
class SampleRequest:
    """One request for samples ``first`` .. ``first + count - 1`` of a problem, drawn with ``seed``; ``wanted``: the
    indices among them still missing (a resumed run requests a whole request again so each sample keeps its seed,
    and keeps only those)."""

    first: int
    count: int
    seed: int
    wanted: tuple[int, ...]


def request_seed(seed: int, first: int, *, per_sample: bool) -> int:
    """The seed of the request whose samples start at ``first``.

    One sample per request (TGI): ``seed + first``. n samples per request (OpenAI APIs): ``seed`` for the first
    request, so a problem whose n fits in one request is sampled as it always was; for a later one a seed derived
    from (seed, first), so each request draws other samples, and a sample's seed depends only on where its request
    starts (32 bits, which every API takes)."""
    if per_sample:
        return seed + first
    return seed if first == 0 else int(stable_hash({"seed": seed, "first_sample": first})[:8], 16)


def sample_requests(
    missing: Sequence[int], n: int, seed: int, *, per_request: int, per_sample: bool = False
) -> list[SampleRequest]:
    """The requests that draw a problem's ``missing`` sample indices (of ``n``): requests cover fixed runs of
    ``per_request`` indices (0.., per_request.., ...), so the same sample always comes from the same request and
    a resumed run neither repeats nor loses one."""
    size = 1 if per_sample else max(1, per_request)
    runs: dict[int, list[int]] = {}
    for index in sorted(set(missing)):
        runs.setdefault(index - index % size, []).append(index)
    return [
        SampleRequest(first, min(size, n - first), request_seed(seed, first, per_sample=per_sample), tuple(wanted))
        for first, wanted in runs.items()
    ]


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The text before the first occurrence of any stop token (MultiPL-E's rule)."""
    positions = [text.find(stop) for stop in stops if stop and stop in text]
    return text[: min(positions)] if positions else text


def generate_completions(
    problems: Sequence[Problem],
    endpoint: EndpointSpec,
    *,
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    prompt_mode: instruct.PromptMode = "completion",
    response_prefix: bool = True,
    concurrency: int = 4,
    skip: Callable[[str, int], bool] | None = None,
    on_record: Callable[[dict[str, Any]], None],
    on_request: OnRequest | None = None,
    progress: Callable[[int, int], None] | None = None,
    retry: Retry | None = None,
    watch: RequestWatch | None = None,
) -> None:
    """Call ``on_record`` once per (problem, sample) not skipped; records carry name, benchmark, language, sample,
    prompt, completion (cut at the problem's stop tokens; a chat answer is kept whole), raw_completion,
    finish_reason, prompt_tokens, completion_tokens, latency_s and the sampling settings (temperature, top_p,
    max_tokens: MultiPL-E's names); `codequant execute` looks the tests up in the record's benchmark. At most
    ``concurrency`` requests are in flight (fewer if the endpoint's max_concurrency says so). Raises ServiceError
    when the endpoint stays unreachable or does not answer in time, InputError when it rejects requests (4xx).

    TGI gets one request per sample (sample i seeded ``seed + i``); the OpenAI APIs get n split into requests of
    at most ``endpoint.samples_per_request`` samples (``sample_requests``), whatever n is.

    ``prompt_mode="instruct"``: each problem is sent as chat messages (``codequant.instruct.messages``, with the
    response prefix unless ``response_prefix`` is false) to the chat completions API; ``raw_completion`` is the
    whole answer (prefix included), ``completion`` the program head extracted from it (the prompt's part included,
    so ``prompt`` is empty and ``prompt + completion + "\n" + tests`` is still the program), ``extracted`` says
    whether the problem's function was found, and ``prompt_mode`` is "instruct".

    ``on_request(latency_s, completion_tokens)``: once per request sent (one per sample for TGI, one per problem
    for the OpenAI APIs), from the thread that sent it; tokens of all the samples the request generated, None when
    the server does not say. ``watch`` sees the requests in flight (a progress display's "waiting")."""
    protocol = get_api(endpoint.api)
    if prompt_mode == "instruct" and not protocol.chat:
        chat_apis = " or ".join(chat_api_names())
        raise InputError(f"endpoint {endpoint.url}: instruct mode needs the chat API (api {chat_apis})")
    client = client_for(endpoint, retry, watch)
    chat = protocol.prompts_as_chat or prompt_mode == "instruct"
    if endpoint.max_concurrency:
        concurrency = min(concurrency, endpoint.max_concurrency)
    client.check()
    skip = skip or (lambda _name, _sample: False)
    work = [
        (problem, request)
        for problem in problems
        for request in sample_requests(
            [s for s in range(n) if not skip(problem.name, s)],
            n,
            seed,
            per_request=endpoint.samples_per_request,
            per_sample=client.per_sample,
        )
    ]
    total = sum(len(request.wanted) for _, request in work)
    done = 0
    lock = threading.Lock()
    if progress:
        progress(0, total)

    # Once the call is going to raise (a failed request, an exception from on_record or progress such as a
    # cancellation, SIGTERM in the caller's thread), queued work is not started and the requests still in flight
    # record nothing: a cancelled study stores nothing after it stopped.
    failed = threading.Event()

    def run(problem: Problem, request: SampleRequest) -> None:
        nonlocal done
        if failed.is_set():
            return
        try:
            samples = client.sample(
                instruct.messages(problem, with_prefix=response_prefix)
                if prompt_mode == "instruct"
                else problem.prompt,
                n=request.count,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                stop=[] if chat else problem.stop_tokens,  # a chat answer ends with the assistant's turn
                seed=request.seed,
                on_request=on_request,
            )
        except BaseException:
            failed.set()
            raise
        with lock:
            if failed.is_set():
                return
            for index in request.wanted:
                sample = samples[index - request.first]
                extra: dict[str, Any] = {}
                if prompt_mode == "instruct":
                    raw = (instruct.response_prefix(problem) if response_prefix else "") + sample.text
                    extracted = extract(raw, problem)
                    completion, extra["extracted"] = extracted.head, extracted.found
                    extra["prompt"], extra["prompt_mode"] = "", prompt_mode  # the head holds the prompt
                else:
                    raw = sample.text
                    completion = sample.text if chat else cut_at_stop(sample.text, problem.stop_tokens)
                on_record(
                    {
                        "name": problem.name,
                        "benchmark": problem.benchmark,
                        "language": problem.language,
                        "sample": index,
                        "prompt": problem.prompt,
                        "completion": completion,
                        "raw_completion": raw,
                        **extra,
                        "finish_reason": sample.finish_reason,
                        "prompt_tokens": sample.prompt_tokens,
                        "completion_tokens": sample.completion_tokens,
                        "latency_s": round(sample.latency_s, 4),
                        "temperature": temperature,
                        "top_p": top_p,
                        "max_tokens": max_new_tokens,
                    }
                )
            done += len(request.wanted)
            if progress:
                progress(done, total)

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        futures = [pool.submit(run, problem, request) for problem, request in work]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            failed.set()
            for future in futures:
                future.cancel()
            raise
