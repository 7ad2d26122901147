"""What a served model costs and how well it models code: its memory as loaded and its perplexity on given texts."""

from __future__ import annotations

import math
import resource
import sys
from typing import Any

import torch

from codequant_serving.loading import prepare_thread


def model_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers (quantized codes and codebooks included)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def memory(model: Any) -> dict[str, Any]:
    """Peak and current memory of the served model, and where the figures come from.

    On CUDA: ``torch.cuda.max_memory_allocated`` / ``memory_allocated`` of the model's device (weights, KV caches
    and activations of everything served so far). On CPU: the server process's peak and current resident set
    size, which also counts the Python interpreter and libraries; ``model_bytes`` is the weights alone.
    """
    device = next(model.parameters()).device
    weights = model_bytes(model)
    if device.type == "cuda":
        return {
            "device": str(device),
            "source": "torch.cuda.max_memory_allocated",
            "peak_bytes": int(torch.cuda.max_memory_allocated(device)),
            "current_bytes": int(torch.cuda.memory_allocated(device)),
            "model_bytes": weights,
        }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    current = _current_rss()
    peak_bytes = int(peak if sys.platform == "darwin" else peak * 1024)
    return {
        "device": device.type,
        "source": "process peak RSS (getrusage ru_maxrss)",
        # the kernel updates ru_maxrss lazily: a moment's current RSS can be above it
        "peak_bytes": max(peak_bytes, current or 0),
        "current_bytes": current,
        "model_bytes": weights,
    }


def _current_rss() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return None
    return pages * resource.getpagesize()


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, texts: list[str], max_tokens: int) -> dict[str, Any]:
    """exp of the mean next-token loss over every token of ``texts`` (each cut to ``max_tokens``), one text at a
    time so padding never enters the figure; ``tokens``: how many tokens were predicted."""
    prepare_thread(model)
    device = next(model.parameters()).device
    total_loss, total_tokens = 0.0, 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
        if len(ids) < 2:
            continue
        batch = torch.tensor([ids], device=device)
        loss = model(input_ids=batch, labels=batch).loss
        total_loss += float(loss) * (len(ids) - 1)
        total_tokens += len(ids) - 1
    if not total_tokens:
        raise ValueError("the texts have fewer than two tokens each: nothing to predict")
    return {"perplexity": math.exp(total_loss / total_tokens), "tokens": total_tokens, "texts": len(texts)}
