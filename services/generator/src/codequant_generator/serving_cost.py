"""What serving a variant costs: request latencies and tokens counted during generation, then the server's
memory and held-out perplexity from `codequant serve`'s ``/codequant`` routes, stored per variant."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from codequant.store import ServingMeasurement, Store

#: Scoring the held-out set is a few dozen forward passes; a large model on a busy CPU needs a while.
PERPLEXITY_TIMEOUT_S = 900.0


@dataclass
class CostLog:
    """Latency and completion tokens of each request, and the wall-clock time generation took."""

    latencies_s: list[float] = field(default_factory=list)
    tokens: int | None = 0
    samples: int = 0
    generation_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _started: float | None = field(default=None, repr=False)

    def on_request(self, latency_s: float, completion_tokens: int | None) -> None:
        """The generator's ``on_request`` hook."""
        with self._lock:
            self.latencies_s.append(round(latency_s, 4))
            self.tokens = None if self.tokens is None or completion_tokens is None else self.tokens + completion_tokens

    def start(self) -> None:
        self._started = time.monotonic()

    def stop(self) -> None:
        if self._started is not None:
            self.generation_s += time.monotonic() - self._started
            self._started = None


def server_measurements(url: str) -> dict[str, Any]:
    """Memory (queried first, so the figure is serving's peak, not scoring's) and held-out perplexity from a
    server's ``/codequant`` routes; an endpoint without them gives ``note`` instead of figures."""
    base = url.rstrip("/").removesuffix("/v1")
    try:
        memory = httpx.get(f"{base}/codequant/memory", timeout=30)
        if memory.status_code in (404, 405):
            return {"note": "the endpoint has no /codequant routes (not codequant serve)"}
        memory.raise_for_status()
        scored = httpx.post(f"{base}/codequant/perplexity", json={}, timeout=PERPLEXITY_TIMEOUT_S)
        scored.raise_for_status()
    except httpx.HTTPError as exc:
        return {"note": f"cannot measure the server: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"}
    ppl = scored.json()
    return {
        "memory": memory.json(),
        "perplexity": ppl["perplexity"],
        "perplexity_tokens": ppl["tokens"],
        "perplexity_set": ppl["set"],
    }


def record_cost(store: Store, variant_key: str, server: str, log: CostLog, measured: dict[str, Any]) -> None:
    """Add ``log`` to the variant's stored measurements (generation resumed adds to what an earlier run counted);
    the server's figures replace earlier ones when present."""
    with store.session() as session:
        row = session.get(ServingMeasurement, variant_key)
        if row is None:
            row = ServingMeasurement(
                variant_key=variant_key, server=server, requests=0, samples=0, completion_tokens=0, latencies_s=[]
            )
            row.generation_s = 0.0
            session.add(row)
        row.server = server
        row.requests += len(log.latencies_s)
        row.samples += log.samples
        row.completion_tokens = (
            None if row.completion_tokens is None or log.tokens is None else row.completion_tokens + log.tokens
        )
        row.generation_s += log.generation_s
        row.latencies_s = [*row.latencies_s, *log.latencies_s]
        for name in ("memory", "perplexity", "perplexity_tokens", "perplexity_set"):
            if measured.get(name) is not None:
                setattr(row, name, measured[name])
        row.note = measured.get("note")
