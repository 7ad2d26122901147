"""The reference self-check: every problem's reference solution runs in this executor, under the limits the
completions will get, twice (the second run measures flakes). A problem whose reference fails is reported with the
reason and left out of comparisons, never counted against a variant. A reference whose two runs disagree is left out
too (``rerun=False``), or runs again until two runs in a row agree and counts as it settled (``rerun=True``, at most
``max_runs`` runs)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from codequant.benchmarks.load import BenchmarkSet
from codequant.limits import Limits
from codequant_executor.api import iter_execute_records

#: Runs of each reference: the first is the check, the second measures whether its verdict flips.
RUNS = 2


@dataclass(frozen=True)
class ReferenceRun:
    """One problem's reference solution, run ``RUNS`` times."""

    name: str
    statuses: tuple[str, ...]
    durations_s: tuple[float, ...]
    stderr: str
    #: whether a flipped reference counts as it settled (the last two runs agree) rather than failing
    settle: bool = False

    @property
    def passed(self) -> bool:
        """Every run passed; with ``settle``, the last two runs passed."""
        return all(status == "OK" for status in (self.statuses[-2:] if self.settle else self.statuses))

    @property
    def flipped(self) -> bool:
        """Some run passed and some did not."""
        return len({status == "OK" for status in self.statuses}) > 1

    @property
    def runtime_s(self) -> float:
        """The slowest passing run (what a completion as fast as the reference may need)."""
        return max(d for s, d in zip(self.statuses, self.durations_s, strict=True) if s == "OK")

    @property
    def reason(self) -> str:
        """Why the problem is left out ('' when it is not): the statuses and the error's last line."""
        if self.passed:
            return ""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        detail = f": {lines[-1].strip()[:200]}" if lines else ""
        return f"reference {' then '.join(self.statuses)}{detail}"


@dataclass
class SelfCheck:
    """The self-check of one benchmark: its language, the checked problems and those without a reference."""

    benchmark: str
    language: str
    runs: list[ReferenceRun] = field(default_factory=list)
    no_reference: list[str] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, str]:
        """Problem name -> why its reference did not pass (these problems are excluded from comparisons)."""
        return {run.name: run.reason for run in self.runs if not run.passed}

    @property
    def flipped(self) -> list[str]:
        """Problems whose reference verdict differed between the two runs."""
        return [run.name for run in self.runs if run.flipped]

    @property
    def runtimes_s(self) -> dict[str, float]:
        """Problem name -> the reference's measured runtime, for the problems whose reference passed."""
        return {run.name: run.runtime_s for run in self.runs if run.passed}

    def summary(self) -> dict[str, Any]:
        """Counts for reports: checked, failed, flipped, without reference, flip rate (None when nothing ran)."""
        checked = len(self.runs)
        return {
            "benchmark": self.benchmark,
            "language": self.language,
            "checked": checked,
            "failed": len(self.failed),
            "flipped": len(self.flipped),
            "no_reference": len(self.no_reference),
            "flip_rate": len(self.flipped) / checked if checked else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary, the failures with their reasons, the flips, the runs and the unchecked."""
        return {
            **self.summary(),
            "failures": self.failed,
            "flips": self.flipped,
            "runs": [asdict(run) for run in self.runs],
            "without_reference": self.no_reference,
        }


def self_check(
    benchmark: BenchmarkSet,
    limits: Limits,
    *,
    workers: int | None = None,
    insecure: bool | None = None,
    stop: threading.Event | None = None,
    rerun: bool = False,
    max_runs: int = 5,
) -> SelfCheck:
    """Run every reference solution of ``benchmark`` ``RUNS`` times (never from a store: each run is measured); with
    ``rerun``, flipped ones again until two runs in a row agree (at most ``max_runs``)."""
    problems = benchmark.problems
    language = problems[0].language if problems else ""
    checked = [p for p in problems if p.canonical_solution is not None]
    result = SelfCheck(benchmark.name, language, no_reference=[p.name for p in problems if p not in checked])
    records = [
        {
            "name": p.name,
            "language": p.language,
            "prompt": p.prompt,
            "completion": p.canonical_solution,
            "tests": p.tests,
        }
        for p in checked
    ]
    verdicts: list[list[dict[str, Any]]] = [[] for _ in records]
    pending = list(range(len(records)))
    while pending:
        batch = [records[i] for i in pending]
        for position, verdict in iter_execute_records(batch, limits, workers=workers, insecure=insecure, stop=stop):
            verdicts[pending[position]].append(verdict)
        pending = [i for i in pending if len(verdicts[i]) < RUNS or (rerun and _unsettled(verdicts[i], max_runs))]
        if stop is not None and stop.is_set():
            break
    result.runs = [
        ReferenceRun(
            record["name"],
            tuple(v["status"] for v in runs),
            tuple(v["duration_s"] for v in runs),
            next((v["stderr"] for v in runs if v["status"] != "OK"), ""),
            rerun,
        )
        for record, runs in zip(records, verdicts, strict=True)
        if len(runs) >= RUNS  # a stopped run leaves some unchecked
    ]
    return result


def _unsettled(runs: list[dict[str, Any]], max_runs: int) -> bool:
    """Whether a reference flipped and its last two runs still disagree, with runs left."""
    passes = [v["status"] == "OK" for v in runs]
    return len(runs) < max_runs and len(set(passes)) > 1 and passes[-1] != passes[-2]
