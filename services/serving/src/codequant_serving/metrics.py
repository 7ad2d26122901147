"""Prometheus metrics of one server (its own registry, so several servers can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "codequant_requests", "Requests by route and outcome", ["route", "status"], registry=self.registry
        )
        self.generated_tokens = Counter("codequant_generated_tokens", "Tokens generated", registry=self.registry)
        self.request_seconds = Histogram(
            "codequant_request_duration_seconds",
            "Request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.batch_rows = Histogram(
            "codequant_batch_rows",
            "Sequences decoded together",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.queue_size = Gauge("codequant_queue_size", "Requests waiting for a batch", registry=self.registry)
        self.running = Gauge("codequant_running_sequences", "Sequences in the decode batch", registry=self.registry)
        self.finished = Counter(
            "codequant_finished_sequences", "Sequences finished, by reason", ["reason"], registry=self.registry
        )
