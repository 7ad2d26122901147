"""Queue and task names shared by the orchestrator and the workers (routing lives here, not at call sites)."""

from __future__ import annotations

QUANTIZE = "quantize"
GENERATE = "generate"
EXECUTE = "execute"
REPORT = "report"
QUEUES: tuple[str, ...] = (QUANTIZE, GENERATE, EXECUTE, REPORT)

#: Celery task name per queue; each service registers the task of its queue under this name.
TASK_NAMES: dict[str, str] = {queue: f"codequant.{queue}" for queue in QUEUES}
