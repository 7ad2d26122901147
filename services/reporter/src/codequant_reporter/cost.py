"""The inference cost of each variant as it was served for the study: throughput, latency, peak memory, and its
perplexity on codequant's held-out code set (from the ``serving_measurements`` the generate stage stored)."""

from __future__ import annotations

import statistics
from typing import Any

from codequant_reporter.study_data import StudyData
from codequant_reporter.tables import Table

MEMORY_SOURCE = {"torch.cuda.max_memory_allocated": "CUDA peak allocated"}


def cost_figures(measured: dict[str, Any] | None) -> dict[str, Any]:
    """tokens/s, p50 request latency, peak memory as served and held-out perplexity; None where not measured.

    tokens/s is the completion tokens of every request over the wall-clock time generation took (the study's
    requests in flight together, as served); the latency is per request (one request asks for all n samples of
    a problem over the OpenAI API, one sample over TGI's)."""
    measured = measured or {}
    tokens, seconds = measured.get("completion_tokens"), measured.get("generation_s")
    latencies = measured.get("latencies_s") or []
    memory = measured.get("memory") or {}
    return {
        "server": measured.get("server"),
        "tokens_per_s": tokens / seconds if tokens is not None and seconds else None,
        "latency_p50_s": statistics.median(latencies) if latencies else None,
        "requests": measured.get("requests"),
        "peak_memory_bytes": memory.get("peak_bytes"),
        "memory_source": memory.get("source"),
        "model_bytes": memory.get("model_bytes"),
        "perplexity": measured.get("perplexity"),
        "perplexity_set": measured.get("perplexity_set"),
        "note": measured.get("note"),
    }


def cost_table(data: StudyData) -> Table:
    """Model | Variant | Precision | Served by | tokens/s | p50 latency | peak memory as served | held-out ppl."""
    columns = [
        "Model",
        "Variant",
        "Precision",
        "Served by",
        "tokens/s",
        "p50 latency (s)",
        "Peak memory as served",
        "Measured as",
        "Held-out perplexity",
    ]
    rows, records = [], []
    for model in data.models:
        for variant in model.variants:
            figures = cost_figures(data.serving.get(variant.key))
            source = figures["memory_source"]
            rows.append(
                [
                    model.name,
                    variant.name,
                    variant.precision,
                    figures["server"] or "–",
                    _fixed(figures["tokens_per_s"], 1),
                    _fixed(figures["latency_p50_s"], 2),
                    _bytes(figures["peak_memory_bytes"]),
                    "–" if source is None else MEMORY_SOURCE.get(source, "process peak RSS"),
                    _fixed(figures["perplexity"], 2),
                ]
            )
            records.append({"model": model.name, "variant": variant.name, **figures})
    return Table(
        key="cost",
        title="Inference cost as served",
        columns=columns,
        rows=rows,
        records=records,
        notes=[
            "tokens/s: completion tokens over the wall-clock time of the variant's generation (its requests in "
            "flight together); p50 latency: median per request. Peak memory: CUDA peak allocated by the model's "
            "device, or on CPU the server process's peak resident set (Python and libraries included). "
            "Held-out perplexity: on codequant's own held-out Python and Java snippets (codequant.heldout). "
            "–: not measured (an endpoint that is not codequant serve has no memory or perplexity routes)."
        ],
    )


def _fixed(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _bytes(value: int | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1e9:.2f} GB" if value >= 1e8 else f"{value / 1e6:.1f} MB"
