"""``generate_completions``: sample n completions per problem from an endpoint, cut at the stop tokens, or in
instruct mode answers to an instruction whose code is extracted."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from codequant import instruct
from codequant.benchmarks import Problem
from codequant.errors import InputError
from codequant.extraction import extract
from codequant_generator.clients import Endpoint, OnRequest, Retry, client_for

__all__ = ["Endpoint", "cut_at_stop", "generate_completions"]


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The text before the first occurrence of any stop token (MultiPL-E's rule)."""
    positions = [text.find(stop) for stop in stops if stop and stop in text]
    return text[: min(positions)] if positions else text


def generate_completions(
    problems: Sequence[Problem],
    endpoint: Endpoint,
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
) -> None:
    """Call ``on_record`` once per (problem, sample) not skipped; records carry name, benchmark, language, sample,
    prompt, completion (cut at the problem's stop tokens; a chat answer is kept whole), raw_completion,
    finish_reason, prompt_tokens, completion_tokens, latency_s and the sampling settings (temperature, top_p,
    max_tokens: MultiPL-E's names); `codequant execute` looks the tests up in the record's benchmark. At most
    ``concurrency`` requests are in flight (fewer if the endpoint's max_concurrency says so). Raises ServiceError
    when the endpoint stays unreachable or rejects requests.

    ``prompt_mode="instruct"``: each problem is sent as chat messages (``codequant.instruct.messages``, with the
    response prefix unless ``response_prefix`` is false) to the chat completions API; ``raw_completion`` is the
    whole answer (prefix included), ``completion`` the program head extracted from it (the prompt's part included,
    so ``prompt`` is empty and ``prompt + completion + "\n" + tests`` is still the program), ``extracted`` says
    whether the problem's function was found, and ``prompt_mode`` is "instruct".

    ``on_request(latency_s, completion_tokens)``: once per request sent (one per sample for TGI, one per problem
    for the OpenAI APIs), from the thread that sent it; tokens of all the samples the request generated, None when
    the server does not say."""
    if prompt_mode == "instruct" and endpoint.api == "tgi":
        raise InputError(f"endpoint {endpoint.url}: instruct mode needs the chat API (api openai or openai-chat)")
    client = client_for(endpoint, retry)
    chat = endpoint.api == "openai-chat" or prompt_mode == "instruct"
    if endpoint.max_concurrency:
        concurrency = min(concurrency, endpoint.max_concurrency)
    client.check()
    skip = skip or (lambda _name, _sample: False)
    work = [(p, [s for s in range(n) if not skip(p.name, s)]) for p in problems]
    work = [(p, missing) for p, missing in work if missing]
    if client.per_sample:
        work = [(p, [index]) for p, missing in work for index in missing]
    total = sum(len(missing) for _, missing in work)
    done = 0
    lock = threading.Lock()
    if progress:
        progress(0, total)

    failed = threading.Event()  # after one failure, queued work is not started (the call is going to raise)

    def run(problem: Problem, missing: list[int]) -> None:
        nonlocal done
        if failed.is_set():
            return
        try:
            samples = client.sample(
                instruct.messages(problem, with_prefix=response_prefix)
                if prompt_mode == "instruct"
                else problem.prompt,
                n=n,
                indices=missing,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                stop=[] if chat else problem.stop_tokens,  # a chat answer ends with the assistant's turn
                seed=seed,
                on_request=on_request,
            )
        except BaseException:
            failed.set()
            raise
        with lock:
            for index in missing:
                sample = samples[index]
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
            done += len(missing)
            if progress:
                progress(done, total)

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        futures = [pool.submit(run, problem, missing) for problem, missing in work]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
