"""``codequant worker QUEUE``: a Celery worker on the shared library's app, in every image that has a queue to
consume (the tasks come from the services installed beside it; ``codequant.queues.REQUIRES`` says which)."""

from __future__ import annotations

import os
from importlib import metadata
from typing import Annotated, Literal

import typer

from codequant.errors import InputError
from codequant.queues import QUEUES, REQUIRES


def worker(
    queue: Annotated[str, typer.Argument(help=f"one of {', '.join(QUEUES)}")],
    concurrency: Annotated[int, typer.Option(help="worker processes", min=1)] = 1,
    broker: Annotated[str | None, typer.Option(help="broker URL (default: $CODEQUANT_BROKER_URL)")] = None,
    loglevel: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], typer.Option(help="Celery log level")
    ] = "INFO",
) -> None:
    """Start a Celery worker consuming one queue."""
    if queue not in QUEUES:
        raise InputError(f"unknown queue {queue!r}; known: {', '.join(QUEUES)}")
    missing = [name for name in REQUIRES[queue] if not _installed(name)]
    if missing:
        raise InputError(f"this machine cannot run {queue!r} tasks: {', '.join(missing)} not installed")
    from codequant.celery_app import app

    if broker:  # the tasks are registered on this app, so point it at the broker rather than make another
        app.conf.broker_url = app.conf.result_backend = broker
    # Each queue's workers keep the messages they hold under keys of their own (kombu's unacked hash, its index and
    # mutex; by default one set for all): the executor's Redis user is given its queue's alone (compose.yaml), so it
    # cannot plant a message there that a trusted worker would later restore onto the trusted worker's queue.
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        **{f"{name}_key": f"{name}.{queue}" for name in ("unacked", "unacked_index", "unacked_mutex")},
    }
    app.worker_main(
        [
            "worker",
            "--queues",
            queue,
            "--concurrency",
            str(concurrency),
            "--prefetch-multiplier",
            "1",
            "--hostname",
            f"{queue}-{os.getpid()}@%h",
            "--loglevel",
            loglevel,
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True
