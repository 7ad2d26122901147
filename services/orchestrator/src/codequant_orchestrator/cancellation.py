"""Cancelling a study: a status in the store that its runner polls, so any process can cancel a study that
another process runs (the API cancels the studies its runner thread or a `codequant run` works on).

Both runners call a ``CancelCheck`` between units of work and from the stage functions' progress callbacks;
it raises ``StudyCancelled``, which unwinds the stage (model servers stop, jobs are marked cancelled) and the
runner. Work finished before that point is in the store, so a later run resumes from it.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from codequant.store import Store
from codequant.store import Study as StudyRow

#: A cancel was asked for and the runner has not stopped yet.
CANCELLING = "cancelling"
#: The runner stopped (or the study was cancelled before it started).
CANCELLED = "cancelled"


class StudyCancelled(Exception):
    """The study was cancelled; raised inside its runner to stop it at the next unit of work."""


class CancelCheck:
    """Raises StudyCancelled once the study's row says cancelling (the store is read at most every ``every_s``)."""

    def __init__(self, store: Store, study_id: str, *, every_s: float = 0.5) -> None:
        self.store = store
        self.study_id = study_id
        self.every_s = every_s
        self._last = float("-inf")
        self._cancelled = False
        self._lock = threading.Lock()  # stage callbacks come from several threads

    def cancelled(self) -> bool:
        with self._lock:
            if not self._cancelled and time.monotonic() - self._last >= self.every_s:
                self._last = time.monotonic()
                with self.store.session() as session:
                    status = session.scalar(select(StudyRow.status).where(StudyRow.id == self.study_id))
                self._cancelled = status in (CANCELLING, CANCELLED)
            return self._cancelled

    def __call__(self) -> None:
        if self.cancelled():
            raise StudyCancelled(f"study {self.study_id} was cancelled")
