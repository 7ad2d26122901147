"""The executor engine: one sandbox, one runner per language, a pool of slots (uids) for parallel runs."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from codequant.limits import Limits
from codequant_executor.outcome import Verdict
from codequant_executor.python_runner import PythonRunner
from codequant_executor.sandbox import Sandbox, SandboxFailure
from codequant_executor.slots import SlotClaim
from codequant_executor.status import Status

log = logging.getLogger(__name__)
LANGUAGES = ("python", "java")


class Engine:
    """Runs programs in parallel, each in its own sandbox slot. Java support starts on first use."""

    def __init__(self, sandbox: Sandbox | None = None, *, workers: int | None = None) -> None:
        self.sandbox = sandbox or Sandbox()
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.python = PythonRunner(self.sandbox)
        self._java: Any = None
        self._java_lock = threading.Lock()
        self._claim = SlotClaim(self.workers)
        self._slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in self._claim.slots:
            self._slots.put(slot)

    def java(self) -> Any:
        with self._java_lock:
            if self._java is None:
                from codequant_executor.java_runner import JavaRunner

                self._java = JavaRunner(self.sandbox)
            return self._java

    def run_one(self, program: str, language: str, limits: Limits, tests_line: int = 0) -> Verdict:
        """Run one program in a free slot; sandbox failures become SandboxError, never an exception.

        ``tests_line`` (1-based, 0 if unknown) is where the tests start: an exit with status 0 before it fails.
        """
        slot = self._slots.get()
        try:
            runner = self.python if language == "python" else self.java()
            return runner.run(program, limits, slot, tests_line)
        except (SandboxFailure, OSError, RuntimeError) as exc:
            log.exception("sandbox failure")
            return Verdict(Status.SANDBOX_ERROR, None, "", f"codequant sandbox error: {exc}\n", 0.0)
        finally:
            self._slots.put(slot)

    def run_many(
        self,
        jobs: Iterable[tuple[str, str] | tuple[str, str, int]],
        limits: Limits,
        progress: Callable[[int], None] | None = None,
    ) -> list[Verdict]:
        """Run (program, language[, tests_line]) jobs in parallel; results in input order; ``progress(index)``
        after each finished job."""
        jobs = list(jobs)
        results: list[Verdict | None] = [None] * len(jobs)
        with ThreadPoolExecutor(self.workers) as pool:
            futures = {pool.submit(self.run_one, *job[:2], limits, *job[2:]): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                index = futures[future]
                results[index] = future.result()
                if progress:
                    progress(index)
        return [r for r in results if r is not None]

    def close(self) -> None:
        if self._java is not None:
            self._java.compiler.close()
        self._claim.release()
