"""Batched sampling on transformers with a KV cache.

Written by hand because the server must decode the n samples of one prompt as one batch (one prefill,
the cache expanded to n rows), stop each sequence at its own stop string or EOS, batch concurrent
requests together, and draw every sample from its own seeded generator so samples are reproducible —
transformers' ``generate`` does none of the per-sequence stops, per-sample seeds or cross-request
batching, and no maintained server runs AQLM models any more.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from codequant_serving.loading import prepare_thread

log = logging.getLogger(__name__)


class RequestError(ValueError):
    """A request the model cannot serve (reported as a 4xx)."""


@dataclass
class Request:
    """One prompt to sample ``n`` times."""

    prompt: str
    n: int = 1
    max_new_tokens: int = 20
    temperature: float = 1.0
    top_p: float = 1.0
    do_sample: bool = True
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    prompt_ids: list[int] = field(default_factory=list)
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class Sequence:
    """One generated sample."""

    text: str  # generated text, up to and including a matched stop string
    finish_reason: str  # "eos_token" | "stop_sequence" | "length"
    generated_tokens: int
    prompt_tokens: int
    seed: int | None
    stop: str | None = None


def sample_seed(seed: int, index: int) -> int:
    """The generator seed of sample ``index`` of a request seeded with ``seed``."""
    return (seed * 1_000_003 + index * 7_919 + 1) % (2**63 - 1)


class Engine:
    """A background thread that batches queued requests and decodes them together."""

    def __init__(self, model: Any, tokenizer: Any, *, max_batch_size: int = 32, metrics: Any = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.metrics = metrics
        self.device = next(model.parameters()).device
        self.max_context = int(getattr(model.config, "max_position_embeddings", 4096) or 4096)
        self.eos_ids = _eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self._queue: queue.Queue[Request] = queue.Queue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="codequant-engine", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def queue_size(self) -> int:
        return self._queue.qsize()

    def validate(self, request: Request) -> None:
        """Tokenize the prompt and check the request fits the model; RequestError otherwise."""
        request.prompt_ids = self.tokenizer(request.prompt)["input_ids"]
        if not request.prompt_ids:
            raise RequestError("the prompt is empty")
        total = len(request.prompt_ids) + request.max_new_tokens
        if total > self.max_context:
            raise RequestError(
                f"input tokens + max_new_tokens must be <= {self.max_context}; given {len(request.prompt_ids)} "
                f"input tokens and {request.max_new_tokens} max_new_tokens"
            )
        if request.n > self.max_batch_size:
            raise RequestError(f"n must be <= {self.max_batch_size} (the server's --max-batch-size)")

    def submit(self, request: Request) -> Future:
        """Queue a validated request; its future resolves to a list of Sequence."""
        if not request.prompt_ids:
            self.validate(request)
        self._queue.put(request)
        return request.future

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    # -- the batching loop ---------------------------------------------------------------------------------------
    def _loop(self) -> None:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        prepare_thread(self.model)
        while not self._stopped.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            rows = first.n
            deadline = time.monotonic() + 0.005  # let requests sent together (one per sample) join the batch
            while rows < self.max_batch_size:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if rows + nxt.n > self.max_batch_size:
                    self._queue.put(nxt)  # next batch
                    break
                batch.append(nxt)
                rows += nxt.n
            try:
                results = self._decode(batch)
            except Exception as exc:  # a bug or out-of-memory must not kill the server: fail these requests
                log.exception("generation failed")
                for request in batch:
                    request.future.set_exception(exc)
                continue
            for request, sequences in zip(batch, results, strict=True):
                request.future.set_result(sequences)

    @torch.inference_mode()
    def _decode(self, requests: list[Request]) -> list[list[Sequence]]:
        if self.metrics is not None:
            self.metrics.batch_rows.observe(sum(r.n for r in requests))
        prompts: dict[tuple[int, ...], int] = {}
        for request in requests:
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
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        # Expand: each request's n samples share its prompt's prefill.
        rows = [prompts[tuple(r.prompt_ids)] for r in requests for _ in range(r.n)]
        index = torch.tensor(rows, device=self.device)
        cache = out.past_key_values
        cache.batch_select_indices(index)
        logits = out.logits[index, -1, :]
        mask = mask[index]
        position = positions[index, -1]
        states = [_RowState(request, j, len(request.prompt_ids)) for request in requests for j in range(request.n)]
        active = list(range(len(states)))  # batch row -> state index
        while active:
            next_tokens = []
            for row, state_index in enumerate(active):
                token = states[state_index].sample(logits[row])
                next_tokens.append(token)
                states[state_index].push(token, self)
            keep = [row for row, s in enumerate(active) if not states[s].done]
            if not keep:
                break
            if len(keep) < len(active):
                select = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(select)
                mask, position = mask[select], position[select]
                next_tokens = [next_tokens[row] for row in keep]
                active = [active[row] for row in keep]
            step = torch.tensor(next_tokens, device=self.device).unsqueeze(-1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
            position = position + 1
            out = self.model(
                input_ids=step,
                attention_mask=mask,
                position_ids=position.unsqueeze(-1),
                past_key_values=cache,
                use_cache=True,
            )
            cache = out.past_key_values
            logits = out.logits[:, -1, :]
        results: list[list[Sequence]] = []
        cursor = 0
        for request in requests:
            results.append([states[cursor + j].result() for j in range(request.n)])
            cursor += request.n
        if self.metrics is not None:
            self.metrics.generated_tokens.inc(sum(len(s.tokens) for s in states))
        return results


class _RowState:
    """Sampling state of one sequence: its own generator, parameters and stop conditions."""

    def __init__(self, request: Request, index: int, prompt_tokens: int) -> None:
        self.request = request
        self.prompt_tokens = prompt_tokens
        self.seed = sample_seed(request.seed, index) if request.seed is not None else None
        self.generator = torch.Generator()
        if self.seed is not None:
            self.generator.manual_seed(self.seed)
        else:
            self.generator.seed()
        self.tokens: list[int] = []
        self.text = ""
        self.done = False
        self.finish_reason = "length"
        self.stop: str | None = None
        self.greedy = not request.do_sample or request.temperature == 0

    def sample(self, logits: torch.Tensor) -> int:
        if self.greedy:
            return int(torch.argmax(logits))
        scores = logits.float() / self.request.temperature
        probs = torch.softmax(scores, dim=-1)
        if self.request.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            cut = int(torch.searchsorted(cumulative, torch.tensor(self.request.top_p))) + 1
            keep = order[:cut]
            probs = torch.zeros_like(probs).scatter_(0, keep, probs[keep])
        return int(torch.multinomial(probs.cpu(), 1, generator=self.generator))

    def push(self, token: int, engine: Engine) -> None:
        if token in engine.eos_ids:
            self.done, self.finish_reason = True, "eos_token"
            return
        self.tokens.append(token)
        self.text = engine.tokenizer.decode(self.tokens, skip_special_tokens=True)
        for stop in self.request.stop:
            at = self.text.find(stop)
            if at >= 0:
                self.text = self.text[: at + len(stop)]
                self.done, self.finish_reason, self.stop = True, "stop_sequence", stop
                return
        if len(self.tokens) >= self.request.max_new_tokens:
            self.done, self.finish_reason = True, "length"

    def result(self) -> Sequence:
        return Sequence(self.text, self.finish_reason, len(self.tokens), self.prompt_tokens, self.seed, self.stop)


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
