"""The executor pool: one sandbox, one runner per language (``codequant_executor.runner``), slots (uids) for
parallel runs and compile servers."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from codequant.errors import CodequantError
from codequant.limits import Limits
from codequant_executor.outcome import Verdict
from codequant_executor.runner import Runner, RunnerSetup, runner_class
from codequant_executor.sandbox import Sandbox, SandboxFailure
from codequant_executor.sandbox.process import set_stop_event, stop_requested
from codequant_executor.slots import SlotClaim
from codequant_executor.status import Status

log = logging.getLogger(__name__)
INSECURE_ENV = "CODEQUANT_EXECUTOR_INSECURE"
#: (program, language) or (program, language, first line of the tests).
Job = tuple[str, str] | tuple[str, str, int]


class InsecureSandbox(CodequantError):
    """Programs would run with network access: refused unless the caller accepts it (exit code 3)."""

    exit_code = 3


def insecure_from_env() -> bool:
    """Whether ``$CODEQUANT_EXECUTOR_INSECURE`` allows running without network isolation."""
    return os.environ.get(INSECURE_ENV, "").strip().lower() in {"1", "true", "yes"}


class ExecutorPool:
    """Runs programs in parallel, each in its own sandbox slot; Java compile servers get slots of their own.

    Refuses to start (InsecureSandbox) when the sandbox cannot cut programs off the network, unless
    ``insecure`` is set. A language's runner starts on its first program (Python's at once).
    """

    def __init__(self, sandbox: Sandbox | None = None, *, workers: int | None = None, insecure: bool = False) -> None:
        self.sandbox = sandbox or Sandbox()
        if not self.sandbox.isolated and not insecure:
            raise InsecureSandbox(
                f"refusing to run untrusted code without network isolation ({self.sandbox.bwrap_problem}); "
                f"allow bubblewrap's user namespaces (docs/executor.md), or pass --insecure / set {INSECURE_ENV}=1"
            )
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._claim = SlotClaim(2 * self.workers)
        self._slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in self._claim.slots[: self.workers]:
            self._slots.put(slot)
        self._compile_slots = self._claim.slots[self.workers :]
        self._setup = RunnerSetup(self.sandbox, self._claim.directory, tuple(self._compile_slots))
        self._runners: dict[str, Runner] = {}
        self._runners_lock = threading.Lock()
        self.runner("python")

    @property
    def run_slots(self) -> list[int]:
        """The slots programs run in (uid = sandbox uid base + slot)."""
        return self._claim.slots[: self.workers]

    @property
    def compile_slots(self) -> list[int]:
        """The slots of the Java compile servers."""
        return self._compile_slots

    def runner(self, language: str) -> Runner:
        """The runner of a language, made on first use; UnknownLanguage (an InputError) for a language without one."""
        found = self._runners.get(language)
        if found is None:
            cls = runner_class(language)
            with self._runners_lock:
                found = self._runners.get(cls.language)
                if found is None:
                    found = self._runners[cls.language] = cls(self._setup)
                self._runners[language] = found
        return found

    def run_one(self, program: str, language: str, limits: Limits, tests_line: int = 0) -> Verdict:
        """Run one program in a free slot; sandbox failures become SandboxError, never an exception.

        ``tests_line`` (1-based, 0 for a bare program) is where the tests start: the run passes only if the
        harness proves they completed.
        """
        runner_class(language)  # an unknown language is the caller's error (UnknownLanguage), not the sandbox's
        slot = self._slots.get()
        try:
            return self.runner(language).run(program, limits, slot, tests_line)
        except (SandboxFailure, OSError, RuntimeError) as exc:  # FileNotFoundError: no g++ / node here
            if not stop_requested():
                log.exception("sandbox failure")
            return Verdict(Status.SANDBOX_ERROR, None, "", f"codequant sandbox error: {exc}\n", 0.0)
        finally:
            self._slots.put(slot)

    def run_iter(
        self, jobs: Iterable[Job], limits: Limits | Sequence[Limits], stop: threading.Event | None = None
    ) -> Iterator[tuple[int, Verdict]]:
        """Run (program, language[, tests_line]) jobs in parallel, under ``limits`` (one for all, or one per job);
        yield (index, verdict) as each finishes.

        Once ``stop`` is set, queued jobs do not start and running ones are ended within ``POLL_S`` (as by their
        timeout): their verdicts are never yielded. Closing the iterator early stops the rest the same way; it
        returns once no program of these jobs runs any more.
        """
        jobs = list(jobs)
        each = [limits] * len(jobs) if isinstance(limits, Limits) else list(limits)
        stop = stop or threading.Event()
        executor = ThreadPoolExecutor(self.workers, initializer=set_stop_event, initargs=(stop,))
        futures: dict = {}
        try:
            futures = {executor.submit(self._run_unless_stopped, stop, job, each[i]): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                verdict = future.result()
                if verdict is not None:
                    yield futures[future], verdict
        finally:
            if not all(future.done() for future in futures):
                stop.set()
            executor.shutdown(wait=True, cancel_futures=True)

    def _run_unless_stopped(self, stop: threading.Event, job: Job, limits: Limits) -> Verdict | None:
        """``run_one``, or None when ``stop`` was set before or while it ran (its verdict would be the stop's)."""
        if stop.is_set():
            return None
        verdict = self.run_one(*job[:2], limits, *job[2:])
        return None if stop.is_set() else verdict

    def run_many(
        self,
        jobs: Iterable[Job],
        limits: Limits,
        progress: Callable[[int], None] | None = None,
    ) -> list[Verdict]:
        """Run (program, language[, tests_line]) jobs in parallel; results in input order; ``progress(index)``
        after each finished job."""
        jobs = list(jobs)
        results: list[Verdict | None] = [None] * len(jobs)
        for index, verdict in self.run_iter(jobs, limits):
            results[index] = verdict
            if progress:
                progress(index)
        return [r for r in results if r is not None]

    def close(self) -> None:
        for runner in {id(r): r for r in self._runners.values()}.values():
            runner.close()
        self._claim.release()
