"""The engine: continuous batching (requests join the running batch, finished rows leave), one prefill per
prompt, and samples that depend only on their seed — not on what else is decoded at the same time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from codequant.benchmarks import load_benchmark
from codequant_serving.engine import Engine, Request, TokenEvent
from codequant_serving.loading import load_model
from codequant_serving.metrics import Metrics
from codequant_serving.sampling import choose_tokens

PROBLEMS = load_benchmark("humaneval", limit=3).problems


@pytest.fixture(scope="module")
def loaded(tiny_model: Path) -> tuple[Any, Any]:
    return load_model(str(tiny_model))


@pytest.fixture
def engine(loaded: tuple[Any, Any]) -> Iterator[Engine]:
    engine = Engine(*loaded, max_batch_size=16, metrics=Metrics())
    yield engine
    engine.close()


class _Row:
    def __init__(self, greedy: bool, temperature: float, top_p: float, seed: int) -> None:
        self.greedy, self.temperature, self.top_p = greedy, temperature, top_p
        self.generator = torch.Generator().manual_seed(seed)


def test_batched_sampling_draws_what_multinomial_draws_row_by_row() -> None:
    """Each sampled row gets exactly torch.multinomial's token from its own generator, whatever the batch."""
    torch.manual_seed(0)
    settings = [(False, 0.2, 0.95), (False, 1.0, 1.0), (True, 1.0, 1.0), (False, 1.5, 0.5), (False, 0.7, 0.999)]
    for trial in range(40):
        logits = torch.randn(len(settings) * 3, 2048) * (1 + trial % 7)
        rows = [_Row(*settings[i % len(settings)], seed=1000 * trial + i) for i in range(len(logits))]
        expected = []
        for i, (greedy, temperature, top_p) in enumerate(settings[i % len(settings)] for i in range(len(logits))):
            if greedy:
                expected.append(int(logits[i].argmax()))
                continue
            probs = torch.softmax(logits[i] / temperature, dim=-1)
            if top_p < 1:
                ordered, order = torch.sort(probs, descending=True)
                cut = int(torch.searchsorted(torch.cumsum(ordered, -1), torch.tensor(top_p))) + 1
                probs = torch.zeros_like(probs).scatter_(0, order[:cut], probs[order[:cut]])
            generator = torch.Generator().manual_seed(1000 * trial + i)
            expected.append(int(torch.multinomial(probs, 1, generator=generator)))
        assert choose_tokens(logits, rows) == expected


def _running(engine: Engine) -> float | None:
    return engine.metrics.registry.get_sample_value("codequant_running_sequences")


def _run(engine: Engine, requests: list[Request]) -> list[list[tuple[str, str]]]:
    futures = [engine.submit(r) for r in requests]
    return [[(s.text, s.finish_reason) for s in f.result(timeout=300)] for f in futures]


def _request(problem_index: int, **kwargs: Any) -> Request:
    problem = PROBLEMS[problem_index]
    settings = {"n": 3, "max_new_tokens": 60, "temperature": 0.8, "top_p": 0.95, "seed": 5, "stop": problem.stop_tokens}
    return Request(prompt=problem.prompt, **{**settings, **kwargs})


def test_a_request_joins_the_running_batch_and_samples_what_it_samples_alone(engine: Engine) -> None:
    long_alone = _run(engine, [_request(0, n=2, max_new_tokens=150, stop=[], do_sample=False)])
    short_alone = _run(engine, [_request(1, max_new_tokens=8)])

    started = threading.Event()
    running_after_short: list[float] = []
    short = _request(1, max_new_tokens=8)

    def on_event(event: TokenEvent) -> None:
        if event.position == 3:
            started.set()
        if short.future.done():
            running_after_short.append(_running(engine))

    long = _request(0, n=2, max_new_tokens=150, stop=[], do_sample=False, on_event=on_event)
    long_future = engine.submit(long)
    assert started.wait(120)
    engine.submit(short).result(timeout=120)
    assert not long_future.done(), "the short request waited for the long one instead of joining its batch"
    long_future.result(timeout=300)
    assert [[(s.text, s.finish_reason) for s in short.future.result()]] == short_alone
    assert [[(s.text, s.finish_reason) for s in long_future.result()]] == long_alone
    assert running_after_short and set(running_after_short) == {2.0}  # the short request's 3 rows left the batch


def test_samples_do_not_depend_on_what_is_decoded_with_them(engine: Engine) -> None:
    def requests() -> list[Request]:
        return [_request(i % 3, seed=i, n=2 + i % 2, temperature=1.5) for i in range(6)]

    alone = [_run(engine, [r])[0] for r in requests()]
    together = _run(engine, requests())  # all queued at once: joined, padded, trimmed as rows finish
    assert together == alone
    assert len({text for sample in alone for text, _ in sample}) > 6  # samples differ from each other


def test_a_cancelled_request_leaves_the_batch(engine: Engine) -> None:
    request = _request(0, n=2, max_new_tokens=200, stop=[], do_sample=False)

    def cancel_early(event: TokenEvent) -> None:
        if event.position >= 3:
            request.cancelled = True

    request.on_event = cancel_early
    sequences = engine.submit(request).result(timeout=120)
    assert [s.finish_reason for s in sequences] == ["cancelled", "cancelled"]
    assert all(s.generated_tokens <= 4 for s in sequences)
    assert _running(engine) == 0
