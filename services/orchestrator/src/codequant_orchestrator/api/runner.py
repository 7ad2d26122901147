"""Runs submitted studies one at a time in a background thread, the way `codequant run` does."""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from codequant.errors import CodequantError
from codequant.store import Store
from codequant.store import Study as StudyRow
from codequant.study import parse_study
from codequant_orchestrator import bookkeeping
from codequant_orchestrator.api.admission import confine
from codequant_orchestrator.cancellation import CANCELLED, CANCELLING, StudyCancelled
from codequant_orchestrator.progress import StageProgress
from codequant_orchestrator.studies import open_parsed

log = logging.getLogger(__name__)


class StudyQueue:
    """A FIFO of pending study ids and the thread that runs them (embedded, or over Celery when distributed).

    A study is ``pending`` while it waits here and ``running`` once taken; a study cancelled while it waits is
    skipped, one cancelled while it runs stops at its runner's next unit of work (``cancellation``)."""

    def __init__(
        self,
        store: Store,
        *,
        distributed: bool,
        broker_url: str | None,
        data_dir: Path | None,
        device: str,
        output_root: Path,
    ) -> None:
        self.store = store
        self.distributed = distributed
        self.broker_url = broker_url
        self.data_dir = data_dir
        self.device = device
        self.output_root = output_root
        self._queue: queue.Queue[str] = queue.Queue()
        self.current: str | None = None
        self._thread = threading.Thread(target=self._loop, name="codequant-studies", daemon=True)
        self._thread.start()

    def submit(self, study_id: str) -> None:
        self._queue.put(study_id)

    def _loop(self) -> None:
        while True:
            study_id = self._queue.get()
            if not bookkeeping.move_study(self.store, study_id, ("pending",), "running"):
                continue  # cancelled while it waited
            self.current = study_id
            try:
                self._run(study_id)
            except StudyCancelled:
                bookkeeping.move_study(self.store, study_id, ("running", CANCELLING), CANCELLED)
            except Exception as exc:  # a failed study must not stop the queue
                log.exception("study %s failed", study_id)
                bookkeeping.set_study_status(self.store, study_id, "failed", f"{exc.__class__.__name__}: {exc}")
            finally:
                self.current = None

    def _run(self, study_id: str) -> None:
        with self.store.session() as session:
            spec_yaml = session.get(StudyRow, study_id).spec_yaml
        try:
            study = confine(parse_study(spec_yaml, source=f"study {study_id}"), self.output_root)
            opened = open_parsed(study, spec_yaml, store_url=self.store.url, data_dir=self.data_dir)
            progress = StageProgress({}, enabled=False)
            if self.distributed:
                from codequant_orchestrator.distributed import DistributedRunner

                failures = DistributedRunner(
                    opened.plan, opened.store, progress, broker_url=self.broker_url, device=self.device
                ).run()
            else:
                from codequant_orchestrator.embedded import EmbeddedRunner

                failures = EmbeddedRunner(opened.plan, opened.store, progress, device=self.device).run()
        except CodequantError as exc:
            bookkeeping.set_study_status(self.store, study_id, "failed", str(exc))
            return
        error = "; ".join(f"{k}: {v}" for k, v in failures.items()) or None
        bookkeeping.set_study_status(self.store, study_id, "failed" if failures else "done", error)
