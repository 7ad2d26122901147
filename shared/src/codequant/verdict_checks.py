"""A study's stored verdict checks (the store's ``verifications``, written by the orchestrator: the reference
self-check and the flake re-runs, docs/executor.md) and the problems they leave out of every comparison: what the
report and `codequant run`'s summary both exclude."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from codequant.store import Store, Verification


@dataclass
class VerdictChecks:
    """A study's stored checks: benchmark -> its self-check, and each variant's flake re-runs."""

    self_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    flakes: list[dict[str, Any]] = field(default_factory=list)

    def excluded(self) -> dict[str, dict[str, str]]:
        """Benchmark -> problem -> why it is left out of the comparisons: its reference failed, or its verdict
        flipped (``policy: exclude``) or never settled (``policy: rerun``)."""
        out: dict[str, dict[str, str]] = defaultdict(dict)
        for name, check in self.self_checks.items():
            for problem, reason in check["failures"].items():
                out[name][problem] = f"self-check: {reason}"
        for flake in self.flakes:
            for rerun in flake["reruns"]:
                statuses = rerun["statuses"]
                passes = {status == "OK" for status in statuses}
                settled = (statuses[-1] == "OK") == (statuses[-2] == "OK")
                if len(passes) > 1 and (flake["policy"] == "exclude" or not settled):
                    out[flake["benchmark"]].setdefault(
                        rerun["name"], f"verdict flipped for {flake['variant']} ({' then '.join(statuses)})"
                    )
        return dict(out)


def load_verdict_checks(store: Store, study_id: str) -> VerdictChecks:
    """The checks stored for ``study_id`` (none for studies run before the checks existed)."""
    checks = VerdictChecks()
    with store.session() as session:
        rows = session.scalars(
            select(Verification).where(Verification.study_id == study_id).order_by(Verification.created_at)
        )
        for row in rows:
            if row.kind == "self-check":
                checks.self_checks[row.benchmark] = dict(row.result)
            else:
                checks.flakes.append(dict(row.result))
    return checks
