"""Queue and task names shared by the orchestrator and the workers (routing lives here, not at call sites).

Queues are split by what a worker must have installed to run their tasks: a self-served variant's generation
(`generate`) needs the model server, one sampled from an external endpoint (`generate-remote`) does not.
"""

from __future__ import annotations

import uuid

QUANTIZE = "quantize"
GENERATE = "generate"
GENERATE_REMOTE = "generate-remote"
EXECUTE = "execute"
REPORT = "report"
QUEUES: tuple[str, ...] = (QUANTIZE, GENERATE, GENERATE_REMOTE, EXECUTE, REPORT)

#: Celery task name per queue; each service registers the task of its queue under this name.
TASK_NAMES: dict[str, str] = {queue: f"codequant.{queue}" for queue in QUEUES}

#: Tasks beside each queue's stage task: the executor's verdict checks and the serving agreement check (they run
#: where their queue's tools are). Their task ids start with their queue too (``new_task_id``).
SELF_CHECK_TASK = "codequant.execute.self-check"
FLAKES_TASK = "codequant.execute.flakes"
AGREEMENT_TASK = "codequant.generate.agreement"

#: Task name -> the queue it is routed to.
QUEUE_OF_TASK: dict[str, str] = {
    **{name: queue for queue, name in TASK_NAMES.items()},
    SELF_CHECK_TASK: EXECUTE,
    FLAKES_TASK: EXECUTE,
    AGREEMENT_TASK: GENERATE,
}

#: Distributions a worker needs installed to run each queue's tasks.
REQUIRES: dict[str, tuple[str, ...]] = {
    QUANTIZE: ("codequant-quantizer",),
    GENERATE: ("codequant-generator", "codequant-serving"),
    GENERATE_REMOTE: ("codequant-generator",),
    EXECUTE: ("codequant-executor",),
    REPORT: ("codequant-reporter",),
}


def new_task_id(queue: str) -> str:
    """A fresh Celery task id that starts with its queue (``execute-<uuid>``): the executor's Redis user may touch
    only ``celery-task-meta-execute-*``, so it can neither read nor forge another service's task results."""
    return f"{queue}-{uuid.uuid4()}"
