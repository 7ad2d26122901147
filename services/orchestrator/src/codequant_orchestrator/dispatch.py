"""Celery dispatch with bookkeeping in the store, and recovery of tasks lost with a worker or the broker.

Why by hand: with Redis as broker, a message whose worker died is redelivered only after the
visibility timeout (hours, because quantization tasks are long), and a restarted Redis that keeps
nothing on disk forgets queued messages. The dispatcher therefore checks every in-flight task it
owns: a task that is neither finished, nor waiting in its queue, nor held by a live worker — twice in
a row — is sent again. Tasks are idempotent by key, so a duplicate costs time, never correctness.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError
from sqlalchemy import select, update

from codequant.queues import QUEUE_OF_TASK, new_task_id
from codequant.store import Job, Store

log = logging.getLogger(__name__)

BROKER_ERRORS = (KombuOperationalError, RedisError, ConnectionError, OSError, TimeoutError)


@dataclass
class Inflight:
    job_key: str
    task_name: str
    args: list[Any]
    on_success: Callable[[Any], None]
    on_failure: Callable[[str], None]
    task_id: str | None = None
    unseen: int = 0
    resends: int = field(default=0)


class Dispatcher:
    """Sends tasks by name, remembers their ids in the jobs table, collects results, resends lost tasks."""

    def __init__(self, app: Celery, store: Store, *, max_resends: int = 5) -> None:
        self.app = app
        self.store = store
        self.max_resends = max_resends
        self.inflight: dict[str, Inflight] = {}

    # -- sending ----------------------------------------------------------------------------------------------
    def submit(
        self,
        job: dict[str, Any],
        task_name: str,
        args: list[Any],
        on_success: Callable[[Any], None],
        on_failure: Callable[[str], None],
    ) -> None:
        """Dispatch a job's task unless it is in flight already (a restarted orchestrator re-attaches by task id)."""
        key = job["key"]
        if key in self.inflight:
            return
        self.store.insert_ignore(Job, [job])
        with self.store.session() as session:
            row = session.get(Job, key)
            assert row is not None
            task_id = row.task_id if row.status == "running" else None
        entry = Inflight(key, task_name, args, on_success, on_failure, task_id=task_id)
        self.inflight[key] = entry
        if task_id is None:
            self._send(entry)

    def _send(self, entry: Inflight) -> None:
        try:
            task_id = new_task_id(QUEUE_OF_TASK[entry.task_name])
            result = self.app.send_task(entry.task_name, args=entry.args, task_id=task_id)
        except BROKER_ERRORS as exc:
            log.warning("broker unavailable, will retry sending %s: %s", entry.job_key, exc)
            entry.task_id = None
            return
        entry.task_id, entry.unseen = result.id, 0
        with self.store.session() as session:
            row = session.get(Job, entry.job_key)
            assert row is not None
            row.status, row.task_id, row.attempts = "running", result.id, row.attempts + 1

    # -- collecting -------------------------------------------------------------------------------------------
    def poll(self) -> None:
        """Collect finished tasks; send the ones a broker outage kept from being sent."""
        for key, entry in list(self.inflight.items()):
            if entry.task_id is None:
                self._send(entry)
                continue
            try:
                result = AsyncResult(entry.task_id, app=self.app)
                state = result.state
                if state == "SUCCESS":
                    value = result.get(timeout=10, disable_sync_subtasks=False)
                elif state == "FAILURE":
                    error = result.result
                    value = str(error)
            except BROKER_ERRORS as exc:
                log.warning("result backend unavailable: %s", exc)
                return
            if state == "FAILURE" and isinstance(error, BROKER_ERRORS) and entry.resends < self.max_resends:
                # The worker lost Redis mid-task (e.g. storing its STARTED state): not the job's fault.
                log.warning("task %s of %s hit a broker outage (%s); sending it again", entry.task_id, key, error)
                result.forget()
                entry.resends += 1
                self._send(entry)
                continue
            if state == "SUCCESS":
                del self.inflight[key]
                entry.on_success(value)
                result.forget()
            elif state == "FAILURE":
                del self.inflight[key]
                entry.on_failure(value)
                result.forget()

    # -- recovering -------------------------------------------------------------------------------------------
    def reap(self) -> list[str]:
        """Resend tasks that are nowhere: not finished, not queued, not held by a live worker. Returns resent keys."""
        waiting = [e for e in self.inflight.values() if e.task_id is not None]
        if not waiting:
            return []
        try:
            queued = self._queued_ids()
            held = self._held_ids()
        except BROKER_ERRORS as exc:
            log.warning("cannot inspect the broker: %s", exc)
            return []
        resent: list[str] = []
        for entry in waiting:
            try:
                state = AsyncResult(entry.task_id, app=self.app).state
            except BROKER_ERRORS:
                return resent
            if state in ("SUCCESS", "FAILURE") or entry.task_id in queued or entry.task_id in held:
                entry.unseen = 0
                continue
            entry.unseen += 1
            if entry.unseen < 2:
                continue
            if entry.resends >= self.max_resends:
                del self.inflight[entry.job_key]
                entry.on_failure(f"task lost {entry.resends + 1} times (worker or broker died)")
                continue
            log.warning("task %s of %s was lost; sending it again", entry.task_id, entry.job_key)
            entry.resends += 1
            self._send(entry)
            resent.append(entry.job_key)
        return resent

    def _queued_ids(self) -> set[str]:
        return queued_task_ids(self.app, {QUEUE_OF_TASK[e.task_name] for e in self.inflight.values()})

    def _held_ids(self) -> set[str]:
        inspector = self.app.control.inspect(timeout=2.0)
        ids: set[str] = set()
        for listing in (inspector.active() or {}, inspector.reserved() or {}):
            for tasks in listing.values():
                ids.update(task["id"] for task in tasks)
        return ids

    def pending_keys(self) -> set[str]:
        return set(self.inflight)

    # -- cancelling -------------------------------------------------------------------------------------------
    def cancel(self, study_id: str, *, stop_stages: Collection[str] = ()) -> None:
        """Forget every in-flight task and withdraw the study's dispatched tasks (see ``withdraw``)."""
        self.inflight.clear()
        withdraw(self.app, self.store, study_id, stop_stages=stop_stages)


def queued_task_ids(app: Celery, queues: Collection[str], *, remove: Collection[str] = ()) -> set[str]:
    """Ids of the task messages waiting in ``queues`` (Redis lists); those in ``remove`` are taken off their queue,
    so no worker ever receives them."""
    ids: set[str] = set()
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        for queue in queues:
            for raw in client.lrange(queue, 0, -1):
                try:
                    task_id = json.loads(raw)["headers"]["id"]
                except (ValueError, KeyError, TypeError):
                    continue
                ids.add(task_id)
                if task_id in remove:
                    client.lrem(queue, 0, raw)
    return ids


def withdraw(app: Celery, store: Store, study_id: str, *, stop_stages: Collection[str] = ()) -> int:
    """Withdraw the tasks of a study's dispatched jobs (the jobs table's task ids, so a restarted orchestrator can
    do it too) and mark those jobs cancelled: queued messages are taken off their queues, every task is revoked (a
    worker that holds or later receives it skips it), and the tasks of ``stop_stages`` are also stopped where
    they run (SIGTERM to the worker process running them). Returns how many tasks were withdrawn."""
    with store.session() as session:
        jobs = session.execute(
            select(Job.key, Job.stage, Job.task_id).where(
                Job.study_id == study_id, Job.status == "running", Job.task_id.is_not(None)
            )
        ).all()
    if not jobs:
        return 0
    try:
        queued_task_ids(app, set(QUEUE_OF_TASK.values()), remove={task_id for _, _, task_id in jobs})
        for stop in (True, False):
            ids = [task_id for _, stage, task_id in jobs if (stage in stop_stages) is stop]
            if ids:
                app.control.revoke(ids, terminate=stop, signal="SIGTERM")
    except BROKER_ERRORS as exc:  # the tasks may still run; nobody collects their results
        log.warning("broker unavailable while withdrawing %d tasks of %s: %s", len(jobs), study_id, exc)
    with store.session() as session:
        session.execute(
            update(Job).where(Job.key.in_([key for key, _, _ in jobs])).values(status="cancelled", task_id=None)
        )
    return len(jobs)


def running_job_keys(store: Store, study_id: str) -> set[str]:
    """Jobs a previous orchestrator left dispatched (re-attached on restart)."""
    with store.session() as session:
        return set(session.scalars(select(Job.key).where(Job.study_id == study_id, Job.status == "running")))
