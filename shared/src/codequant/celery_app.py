"""The Celery application: configuration and routing for every codequant queue.

Task implementations live in the services and are found through the
``codequant.tasks`` entry-point group, so a worker image imports only the
services it has installed.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from celery import Celery

from codequant import settings
from codequant.queues import QUEUE_OF_TASK


def task_modules() -> list[str]:
    """Modules of the installed services that define Celery tasks."""
    return sorted(ep.value for ep in entry_points(group="codequant.tasks"))


def create_app(broker_url: str | None = None) -> Celery:
    """A Celery app over Redis with the settings long, idempotent tasks need (see DESIGN.md)."""
    url = broker_url or settings.broker_url()
    app = Celery("codequant", broker=url, backend=url)
    app.conf.update(
        task_routes={name: {"queue": queue} for name, queue in QUEUE_OF_TASK.items()},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=7 * 24 * 3600,
        # A task still running when this expires is delivered again, so tasks are idempotent.
        broker_transport_options={"visibility_timeout": 12 * 3600},
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_track_started=True,
        imports=task_modules(),
    )
    return app


app = create_app()
