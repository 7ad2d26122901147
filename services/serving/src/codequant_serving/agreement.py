"""The serving agreement check's comparison, where the model is served: greedy completions from transformers' own
``generate`` on a model folder (token ids and text) against a server's serving the same folder, and where a served
completion's token ids first leave them. The `generate` queue's task (``codequant_serving.tasks``) and the embedded
runner call ``compare_served``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codequant.agreement import AgreementResult, ProblemAgreement, served_completions
from codequant.launch import running_server
from codequant.payloads import AgreementRequest
from codequant_serving.loading import load_model


@dataclass(frozen=True)
class Reference:
    """One prompt's greedy completion from transformers: its token ids (without a final end-of-sequence token)
    and their text."""

    token_ids: list[int]
    text: str


def reference_completions(
    model: str, prompts: Sequence[str], *, max_new_tokens: int, dtype: str = "auto", device: str = "cpu"
) -> tuple[list[Reference], Any]:
    """(greedy completion of every prompt, tokenizer) from ``model.generate``, one prompt at a time (no
    padding, so nothing but the model decides a token); loaded as ``codequant serve`` loads it."""
    import torch

    loaded, tokenizer = load_model(model, dtype=dtype, device=device)
    references = []
    with torch.no_grad():
        for prompt in prompts:
            inputs = tokenizer(prompt, return_tensors="pt").to(loaded.device)
            out = loaded.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
            ids = without_eos(out[0, inputs["input_ids"].shape[1] :].tolist(), tokenizer.eos_token_id)
            references.append(Reference(ids, tokenizer.decode(ids, skip_special_tokens=True)))
    return references, tokenizer


def without_eos(ids: list[int], eos: int | None) -> list[int]:
    """``ids`` without a final end-of-sequence token (servers differ in whether they report it)."""
    return ids[:-1] if ids and ids[-1] == eos else ids


def first_difference(reference: Sequence[int], served: Sequence[int]) -> int | None:
    """The first position where two token sequences differ (the shorter one's length when one only goes on
    where the other stopped); None when they are equal."""
    for position, (a, b) in enumerate(zip(reference, served, strict=False)):
        if a != b:
            return position
    return None if len(reference) == len(served) else min(len(reference), len(served))


def compare_served(request: AgreementRequest, url: str | None = None) -> AgreementResult:
    """Decode ``request.problems``' prompts greedily with transformers and with ``request.server`` serving the same
    folder (started here, or already running at ``url``), and compare the token ids (not executed: ``pass1`` is
    None until the verdicts are set)."""
    prompts = [p["prompt"] for p in request.problems]
    references, tokenizer = reference_completions(
        request.model, prompts, max_new_tokens=request.max_new_tokens, dtype=request.dtype, device=request.device
    )
    if url is None:
        with running_server(request.model, server=request.server, dtype=request.dtype) as started:  # type: ignore[arg-type]
            served = served_completions(started, prompts, request.max_new_tokens, request.server)
    else:
        served = served_completions(url, prompts, request.max_new_tokens, request.server)
    result = AgreementResult(
        model=request.model, server=request.server, benchmark=request.benchmark, max_new_tokens=request.max_new_tokens
    )
    for problem, reference, (text, ids) in zip(request.problems, references, served, strict=True):
        ids = without_eos(ids, tokenizer.eos_token_id)
        position = first_difference(reference.token_ids, ids)
        result.problems.append(
            ProblemAgreement(
                name=problem["name"],
                reference_tokens=len(reference.token_ids),
                served_tokens=len(ids),
                matching_tokens=len(reference.token_ids) if position is None else position,
                identical=position is None,
                reference_text=reference.text,
                served_text=text,
            )
        )
    return result
