"""Choosing the next token of every row of a batch at once, each sampled row from its own generator.

Sampling is batched (one softmax, one nucleus filter, one argmax for all rows) but draws exactly what
``torch.multinomial(probs, 1, generator=g)`` draws row by row: for one sample, torch's multinomial takes
``argmax(probs / q)`` with ``q ~ Exp(1)`` drawn from ``g`` over the whole vocabulary. Drawing each row's
``q`` from that row's generator keeps every seeded sample identical to sampling it alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch

NUCLEUS_CANDIDATES = 64


class RowSampling(Protocol):
    greedy: bool
    temperature: float
    top_p: float
    generator: torch.Generator


def choose_tokens(logits: torch.Tensor, rows: Sequence[RowSampling]) -> list[int]:
    """The next token of each row: argmax for greedy rows, a temperature / top-p sample for the others."""
    tokens = [0] * len(rows)
    greedy = [i for i, row in enumerate(rows) if row.greedy]
    sampled = [i for i, row in enumerate(rows) if not row.greedy]
    if greedy:
        scores = logits if len(greedy) == len(rows) else logits[greedy]
        for i, token in zip(greedy, scores.argmax(-1).tolist(), strict=True):
            tokens[i] = token
    if sampled:
        scores = logits if len(sampled) == len(rows) else logits[sampled]
        temperature = torch.tensor([rows[i].temperature for i in sampled], device=logits.device).unsqueeze(-1)
        probs = torch.softmax(scores.float() / temperature, dim=-1)
        top_p = [rows[i].top_p for i in sampled]
        if any(p < 1.0 for p in top_p):
            probs = nucleus(probs, torch.tensor([p if p < 1.0 else math.inf for p in top_p], device=logits.device))
        probs = probs.cpu()
        noise = torch.empty_like(probs)
        for j, i in enumerate(sampled):
            noise[j].exponential_(generator=rows[i].generator)
        for i, token in zip(sampled, (probs / noise).argmax(-1).tolist(), strict=True):
            tokens[i] = token
    return tokens


def nucleus(probs: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Zero every token outside each row's smallest most-likely set whose probability reaches ``top_p``
    (the token that crosses the threshold is kept; probabilities are not renormalised).

    Looks at the NUCLEUS_CANDIDATES most likely tokens first (a partial sort) and sorts the whole vocabulary
    only when they do not reach ``top_p`` in some row; either way the same tokens are kept.
    """
    if probs.shape[-1] > NUCLEUS_CANDIDATES:
        ordered, order = torch.topk(probs, NUCLEUS_CANDIDATES, dim=-1)
        cumulative = torch.cumsum(ordered, dim=-1)
        if not bool((cumulative[:, -1] >= top_p).all()):
            ordered, order = torch.sort(probs, dim=-1, descending=True)
            cumulative = torch.cumsum(ordered, dim=-1)
    else:
        ordered, order = torch.sort(probs, dim=-1, descending=True)
        cumulative = torch.cumsum(ordered, dim=-1)
    keep = torch.ones_like(ordered, dtype=torch.bool)
    keep[:, 1:] = cumulative[:, :-1] < top_p.unsqueeze(-1)
    return torch.zeros_like(probs).scatter_(1, order, ordered * keep)
