"""Continuous batching of sampled generation on transformers with a KV cache.

Written by hand because the server must decode the n samples of one prompt from one prefill (the cache
expanded to n rows), let new requests join the running decode batch at step boundaries, stop each
sequence at its own stop string or EOS and free its cache row, and draw every sample from its own
seeded generator so a sample is reproducible whatever else the server decodes at the same time, and queue
requests for more samples than one batch holds (they join in parts, each sample seeded as if they fit).
transformers' ``generate`` has no per-sequence stops, per-sample seeds or cross-request batching; its
``ContinuousBatchingManager`` samples every request from one shared generator and has no stop strings;
no maintained server runs AQLM models any more.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from codequant_serving.kv import GrowingCache, can_merge, merge, plain_attention, select_rows, trim_left
from codequant_serving.loading import prepare_thread
from codequant_serving.sampling import choose_tokens
from codequant_serving.text import IncrementalText

log = logging.getLogger(__name__)
JOIN_WINDOW_S = 0.005  # an idle engine waits this long for requests sent together (one per sample) to arrive


class RequestError(ValueError):
    """A request the model cannot serve (reported as a 4xx)."""


@dataclass
class Sequence:
    """One generated sample."""

    text: str  # generated text, up to and including a matched stop string
    finish_reason: str  # "eos_token" | "stop_sequence" | "length" | "cancelled"
    generated_tokens: int
    prompt_tokens: int
    seed: int  # the request's seed (TGI's API echoes it), or the random seed an unseeded sample drew with
    stop: str | None = None


@dataclass
class TokenEvent:
    """One decoding step of one sample, for streaming. ``text`` is the text this token adds (empty while a
    multi-byte character is incomplete; the texts of a sample's events add up to its Sequence.text);
    ``sequence`` is set on the sample's last event."""

    index: int  # the sample's index in its request
    position: int  # 1 for the sample's first generated token
    token_id: int
    logprob: float  # of the token under the model's distribution (before temperature and top-p)
    text: str
    special: bool
    sequence: Sequence | None = None


@dataclass(eq=False)
class Request:
    """One prompt to sample ``n`` times. ``on_event``, if given, is called from the engine thread per token.

    ``n`` may exceed the engine's batch: the request then joins the batch in parts as rows free up."""

    prompt: str
    n: int = 1
    max_new_tokens: int = 20
    temperature: float = 1.0
    top_p: float = 1.0
    do_sample: bool = True
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    prompt_ids: list[int] = field(default_factory=list)
    on_event: Callable[[TokenEvent], None] | None = None
    cancelled: bool = False  # set when a streaming client goes away: its rows leave the batch at the next step
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)
    rows: list[_Row] = field(default_factory=list)  # its samples admitted to the batch so far, in index order


def sample_seed(seed: int, index: int) -> int:
    """The generator seed of sample ``index`` of a request seeded with ``seed``."""
    return (seed * 1_000_003 + index * 7_919 + 1) % (2**63 - 1)


class Engine:
    """A background thread that keeps one decode batch running; queued requests join it between steps."""

    def __init__(
        self, model: Any, tokenizer: Any, *, max_batch_size: int = 32, metrics: Any = None, threads: int | None = None
    ) -> None:
        """``threads``: torch's CPU threads for generation (default: what torch uses in the calling thread,
        i.e. $OMP_NUM_THREADS or the machine's cores)."""
        self.model, self.tokenizer, self.metrics = model, tokenizer, metrics
        self.threads = threads or torch.get_num_threads()
        self.max_batch_size = max_batch_size
        self.device = next(model.parameters()).device
        self.max_context = int(getattr(model.config, "max_position_embeddings", 4096) or 4096)
        self.eos_ids = _eos_ids(model, tokenizer)
        self.growing_cache = plain_attention(model)  # else one batch at a time, in the model's own cache
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self._queue: queue.Queue[Request] = queue.Queue()
        self._waiting: collections.deque[Request] = collections.deque()  # taken from the queue, not yet fitting
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="codequant-engine", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def queue_size(self) -> int:
        return self._queue.qsize() + len(self._waiting)

    def validate(self, request: Request) -> None:
        """Tokenize the prompt (unless ``prompt_ids`` are given) and check the request fits; RequestError if not."""
        if not request.prompt_ids:
            request.prompt_ids = self.tokenizer(request.prompt)["input_ids"]
        if not request.prompt_ids:
            raise RequestError("the prompt is empty")
        total = len(request.prompt_ids) + request.max_new_tokens
        if total > self.max_context:
            raise RequestError(
                f"input tokens + max_new_tokens must be <= {self.max_context}; given {len(request.prompt_ids)} "
                f"input tokens and {request.max_new_tokens} max_new_tokens"
            )

    def submit(self, request: Request) -> Future:
        """Queue a request; its future resolves to a list of Sequence (one per sample, in index order)."""
        self.validate(request)
        self._queue.put(request)
        return request.future

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    # -- the scheduling loop ------------------------------------------------------------------------------------
    def _loop(self) -> None:
        torch.set_num_threads(self.threads)  # per thread with OpenMP: set it in the generation thread
        prepare_thread(self.model)
        batch: _Batch | None = None
        while not self._stopped.is_set():
            running = batch.size if batch is not None else 0
            joinable = running == 0 or can_merge(batch.cache)  # type: ignore[union-attr]
            new = self._admit(self.max_batch_size - running if joinable else 0, wait=running == 0)
            try:
                if new:
                    joined = self._prefill(new)
                    batch = joined if not running else self._join(batch, joined)  # type: ignore[arg-type]
                if batch is not None and batch.size:
                    self._step(batch)
            except Exception as exc:  # a bug or out-of-memory must not kill the server: fail these requests
                log.exception("generation failed")
                failed = [r for r, _ in new] + ([row.request for row in batch.rows] if batch is not None else [])
                for request in failed:
                    if not request.future.done():
                        request.future.set_exception(exc)
                batch = None

    def _admit(self, free_rows: int, *, wait: bool) -> list[tuple[Request, int]]:
        """Queued requests that fit in ``free_rows``, first come first served, each with how many of its samples
        join now: all of them, or for a request larger than a whole batch as many as there are free rows (the
        rest stays first in line). An idle engine blocks for the first request, then waits JOIN_WINDOW_S for
        requests sent together with it."""
        taken: list[tuple[Request, int]] = []
        deadline = 0.0
        while True:
            if not self._waiting:
                try:
                    if not wait:
                        self._waiting.append(self._queue.get_nowait())
                    elif not taken:
                        self._waiting.append(self._queue.get(timeout=0.2))
                    else:
                        self._waiting.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    return taken
            request = self._waiting[0]
            if request.cancelled or request.future.done():  # cancelled, or failed with part of it decoded
                self._waiting.popleft()
                if not request.future.done():
                    request.future.set_result([])
                continue
            remaining = request.n - len(request.rows) - sum(count for r, count in taken if r is request)
            count = remaining if remaining <= free_rows else free_rows if remaining > self.max_batch_size else 0
            if count == 0:
                return taken
            taken.append((request, count))
            if count == remaining:
                self._waiting.popleft()
            free_rows -= count
            deadline = deadline or time.monotonic() + JOIN_WINDOW_S

    @torch.inference_mode()
    def _prefill(self, admitted: list[tuple[Request, int]]) -> _Batch:
        """One forward pass over the distinct prompts (left-padded); the rows admitted of each request share its
        prompt's cache; every row's first token is sampled from the prefill's logits."""
        prompts: dict[tuple[int, ...], int] = {}
        for request, _ in admitted:
            prompts.setdefault(tuple(request.prompt_ids), len(prompts))
        unique = list(prompts)
        width = max(map(len, unique))
        ids = torch.full((len(unique), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(unique), width), dtype=torch.long)
        for row, tokens in enumerate(unique):  # left padding: every prompt ends at the last column
            ids[row, width - len(tokens) :] = torch.tensor(tokens)
            mask[row, width - len(tokens) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=GrowingCache() if self.growing_cache else None,
            use_cache=True,
        )
        index = torch.tensor([prompts[tuple(r.prompt_ids)] for r, count in admitted for _ in range(count)])
        index = index.to(self.device)
        cache = out.past_key_values
        select_rows(cache, index)
        rows: list[_Row] = []
        for request, count in admitted:
            first = len(request.rows)
            request.rows.extend(_Row(request, j, self) for j in range(first, first + count))
            rows.extend(request.rows[first:])
        batch = _Batch(rows, cache, mask[index], positions[index, -1])
        self._advance(batch, out.logits[index, -1, :])
        return batch

    def _join(self, running: _Batch, joined: _Batch) -> _Batch:
        if joined.size == 0:
            return running
        cache, mask = merge(running.cache, running.mask, joined.cache, joined.mask)
        position = torch.cat([running.position, joined.position])
        return _Batch(running.rows + joined.rows, cache, mask, position, running.tokens + joined.tokens)

    @torch.inference_mode()
    def _step(self, batch: _Batch) -> None:
        """Feed every row its last token and advance the batch by one token."""
        if self.metrics is not None:
            self.metrics.batch_rows.observe(batch.size)
            self.metrics.running.set(batch.size)
        step = torch.tensor(batch.tokens, device=self.device).unsqueeze(-1)
        batch.mask = torch.cat([batch.mask, torch.ones_like(batch.mask[:, :1])], dim=-1)
        batch.position = batch.position + 1
        out = self.model(
            input_ids=step,
            attention_mask=batch.mask,
            position_ids=batch.position.unsqueeze(-1),
            past_key_values=batch.cache,
            use_cache=True,
        )
        batch.cache = out.past_key_values
        self._advance(batch, out.logits[:, -1, :])

    def _advance(self, batch: _Batch, logits: torch.Tensor) -> None:
        """Sample one token per row, record it, and drop the rows that finished (freeing their cache rows)."""
        batch.tokens = choose_tokens(logits, batch.rows)
        logprobs = [0.0] * batch.size
        if any(row.request.on_event is not None for row in batch.rows):
            chosen = torch.tensor(batch.tokens, device=logits.device).unsqueeze(-1)
            logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, chosen).squeeze(-1).tolist()
        for row, token, logprob in zip(batch.rows, batch.tokens, logprobs, strict=True):
            row.logprob = logprob
            row.push(token)
            if not row.done and row.request.cancelled:
                row.finish("cancelled")
        keep = [i for i, row in enumerate(batch.rows) if not row.done]
        if len(keep) == batch.size:
            return
        finished = [row for row in batch.rows if row.done]
        for row in finished:
            row.resolve()
        batch.keep(keep)
        if self.metrics is not None:
            self.metrics.generated_tokens.inc(sum(len(row.tokens) for row in finished))
            for row in finished:
                self.metrics.finished.labels(row.finish_reason).inc()
            self.metrics.running.set(batch.size)


class _Batch:
    """The rows decoded together, their shared KV cache, attention mask and positions."""

    def __init__(
        self, rows: list[_Row], cache: Any, mask: torch.Tensor, position: torch.Tensor, tokens: list[int] | None = None
    ) -> None:
        self.rows, self.cache = rows, cache
        self.mask = mask  # [rows, cached tokens]: 1 for real tokens, 0 for left padding
        self.position = position  # [rows]: position id of the last token fed
        self.tokens = tokens or []  # the token each row feeds next

    @property
    def size(self) -> int:
        return len(self.rows)

    def keep(self, keep: list[int]) -> None:
        self.rows = [self.rows[i] for i in keep]
        self.tokens = [self.tokens[i] for i in keep]
        if not keep:
            self.cache = None
            return
        index = torch.tensor(keep, device=self.mask.device)
        select_rows(self.cache, index)
        self.mask, self.position = self.mask[index], self.position[index]
        if can_merge(self.cache):  # when the longest rows left: drop the columns that are padding in every row
            self.mask = trim_left(self.cache, self.mask)


class _Row:
    """One sample being decoded: its own generator, parameters, text and stop conditions."""

    def __init__(self, request: Request, index: int, engine: Engine) -> None:
        self.request, self.index = request, index
        self.eos_ids = engine.eos_ids
        self.generator = torch.Generator()
        if request.seed is not None:
            self.generator.manual_seed(sample_seed(request.seed, index))
        else:
            self.generator.seed()
        self.greedy = not request.do_sample or request.temperature == 0
        self.temperature, self.top_p = request.temperature, request.top_p
        self.tokens: list[int] = []
        self.text = IncrementalText(engine.tokenizer)
        self.done = False
        self.finish_reason = "length"
        self.stop: str | None = None
        self.final = ""  # the sample's text once done
        self.logprob = 0.0  # of the last token chosen
        self.streamed = ""  # the text sent to on_event so far

    def push(self, token: int) -> None:
        if token in self.eos_ids:
            self.finish("eos_token", token)
            return
        self.tokens.append(token)
        before = len(self.text.text) if self.text.append_only else 0
        self.text.add(self.tokens)
        text = self.text.text
        for stop in self.request.stop:  # a stop string can only start in the text this token added (or just before)
            at = text.find(stop, max(0, before - len(stop) + 1))
            if at >= 0:
                self.stop, self.final = stop, text[: at + len(stop)]
                self.finish("stop_sequence", token)
                return
        if len(self.tokens) >= self.request.max_new_tokens:
            self.finish("length", token)
            return
        self._notify(token, text)

    def finish(self, reason: str, token: int | None = None) -> None:
        """Mark the sample done; its text is the full decode of its tokens unless a stop string cut it."""
        self.done, self.finish_reason = True, reason
        if reason != "stop_sequence":
            self.final = self.text.final(self.tokens)
        if token is not None:
            self._notify(token, self.final)

    def _notify(self, token: int, text: str) -> None:
        if self.request.on_event is None:
            return
        delta = text[len(self.streamed) :] if text.startswith(self.streamed) else ""
        self.streamed += delta
        special = self.done and self.finish_reason == "eos_token"
        position = len(self.tokens) + int(special)
        sequence = self.result() if self.done else None
        self.request.on_event(TokenEvent(self.index, position, token, self.logprob, delta, special, sequence))

    def resolve(self) -> None:
        """Resolve the request's future once all its samples are done."""
        rows = self.request.rows
        if len(rows) == self.request.n and all(row.done for row in rows) and not self.request.future.done():
            self.request.future.set_result([row.result() for row in rows])

    def result(self) -> Sequence:
        seed = self.request.seed if self.request.seed is not None else self.generator.initial_seed()
        return Sequence(self.final, self.finish_reason, len(self.tokens), len(self.request.prompt_ids), seed, self.stop)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
    if not ids:
        raise RequestError("the model defines no end-of-sequence token")
    return ids
