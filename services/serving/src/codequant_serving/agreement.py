"""The reference side of the serving agreement check: greedy completions from transformers' own ``generate`` on
a model folder, and where a served text first leaves them, counted in the reference's tokens.

A served text is compared with the reference by text, not by the server's token ids (vLLM and TGI report ids
differently or not at all): the first differing position is the number of leading reference tokens whose
decoded text the served text starts with, so it is the same whatever server produced the text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codequant_serving.loading import load_model


@dataclass(frozen=True)
class Reference:
    """One prompt's greedy completion from transformers: its token ids and their text."""

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
            ids = out[0, inputs["input_ids"].shape[1] :].tolist()
            references.append(Reference(ids, tokenizer.decode(ids, skip_special_tokens=True)))
    return references, tokenizer


def matching_tokens(reference: Reference, served: str, tokenizer: Any) -> int:
    """How many leading reference tokens the served text reproduces: all of them when the texts are equal, else
    the longest prefix of the reference's tokens whose decoded text the served text starts with (all of them
    too when the served text only goes on where the reference stopped: the first difference is then just after
    the reference's last token)."""
    if served == reference.text:
        return len(reference.token_ids)
    low, high = 0, len(reference.token_ids)  # a decoded prefix only grows with more tokens: binary search
    while low < high:
        middle = (low + high + 1) // 2
        if served.startswith(tokenizer.decode(reference.token_ids[:middle], skip_special_tokens=True)):
            low = middle
        else:
            high = middle - 1
    return low
