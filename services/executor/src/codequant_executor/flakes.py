"""Flakes measured: a seeded sample of one variant's failed samples runs again (never from a store); a sample whose
verdict (pass or not) differs between runs flipped. With more runs allowed, flipped samples run until two runs in a
row agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from codequant.limits import Limits
from codequant.reruns import Rerun
from codequant_executor.api import execute_records

#: Fields of a result that make its program (and its own limit), copied into the re-run.
PROGRAM_FIELDS = ("name", "language", "prompt", "completion", "tests", "program", "timeout_s")


@dataclass
class FlakeCheck:
    """The re-run of a sample of one variant's failures on one benchmark."""

    benchmark: str
    language: str
    variant: str
    failures: int = 0
    reruns: list[Rerun] = field(default_factory=list)

    @property
    def flipped(self) -> list[str]:
        """Problems with a flipped sample."""
        return sorted({r.name for r in self.reruns if r.flipped})

    @property
    def unsettled(self) -> list[str]:
        """Problems with a sample whose last two runs disagree."""
        return sorted({r.name for r in self.reruns if not r.settled})

    def summary(self) -> dict[str, Any]:
        sampled = len(self.reruns)
        flips = sum(r.flipped for r in self.reruns)
        return {
            "benchmark": self.benchmark,
            "language": self.language,
            "variant": self.variant,
            "failures": self.failures,
            "sampled": sampled,
            "flipped": flips,
            "flip_rate": flips / sampled if sampled else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "flipped_problems": self.flipped, "reruns": [asdict(r) for r in self.reruns]}


def measure_flakes(
    check: FlakeCheck,
    sampled: Sequence[dict[str, Any]],
    limits: Limits,
    *,
    max_runs: int = 2,
    workers: int | None = None,
) -> FlakeCheck:
    """Run each sampled result's program again; while ``max_runs`` allows, run the flipped ones until two runs in
    a row agree. ``check`` gets the re-runs."""
    runs = [[r["status"]] for r in sampled]
    pending = list(range(len(sampled)))
    while pending:
        records = [{k: sampled[i][k] for k in PROGRAM_FIELDS if k in sampled[i]} for i in pending]
        for i, result in zip(pending, execute_records(records, limits, workers=workers), strict=True):
            runs[i].append(result["status"])
        pending = [
            i
            for i in pending
            if len(runs[i]) < max_runs and not Rerun("", 0, tuple(runs[i])).settled and _ever_flipped(runs[i])
        ]
    check.reruns = [
        Rerun(r["name"], int(r.get("sample", 0)), tuple(statuses)) for r, statuses in zip(sampled, runs, strict=True)
    ]
    return check


def _ever_flipped(statuses: list[str]) -> bool:
    return len({status == "OK" for status in statuses}) > 1
