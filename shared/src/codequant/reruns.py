"""A program's re-runs and the seeded sample of failures that runs again (flakes measured, docs/executor.md):
shared by the executor, which runs them, and the orchestrator, which draws the sample and settles verdicts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rerun:
    """One sample's runs: the stored one first."""

    name: str
    sample: int
    statuses: tuple[str, ...]

    @property
    def flipped(self) -> bool:
        """Some run passed and some did not."""
        return len({status == "OK" for status in self.statuses}) > 1

    @property
    def settled(self) -> bool:
        """The last two runs agree on pass or fail."""
        return (self.statuses[-1] == "OK") == (self.statuses[-2] == "OK")


def sample_failures(results: Sequence[dict[str, Any]], fraction: float, seed: int) -> list[dict[str, Any]]:
    """A seeded ``fraction`` (at least one when there are failures and the fraction is not 0) of the failed
    results, in (name, sample) order."""
    failed = sorted((r for r in results if r["status"] != "OK"), key=lambda r: (r["name"], r.get("sample", 0)))
    if not failed or fraction <= 0:
        return []
    count = max(1, round(fraction * len(failed)))
    return sorted(random.Random(seed).sample(failed, count), key=lambda r: (r["name"], r.get("sample", 0)))
