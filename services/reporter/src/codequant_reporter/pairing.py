"""Checked per-sample outcomes of a baseline and a variant, paired by (problem, sample index)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from codequant.errors import InputError


def _preview(items: Iterable[Any], limit: int = 5) -> str:
    items = sorted(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(map(str, items[:limit])) + more


def outcomes(records: Iterable[dict[str, Any]], label: str) -> dict[str, dict[int, bool]]:
    """problem -> sample -> passed; InputError on malformed or duplicated records."""
    table: dict[str, dict[int, bool]] = defaultdict(dict)
    duplicates: set[tuple[str, int]] = set()
    for index, record in enumerate(records, start=1):
        name, sample, passed = record.get("name"), record.get("sample"), record.get("passed")
        if not isinstance(name, str) or not isinstance(sample, int) or isinstance(sample, bool):
            raise InputError(f"{label}: record {index} needs a string 'name' and an integer 'sample'")
        if not isinstance(passed, bool):
            raise InputError(f"{label}: record {index} ({name} sample {sample}) needs a boolean 'passed'")
        if sample in table[name]:
            duplicates.add((name, sample))
        table[name][sample] = passed
    if duplicates:
        raise InputError(f"{label}: duplicated samples {_preview(duplicates)}")
    if not table:
        raise InputError(f"{label}: no records")
    return dict(table)


@dataclass(frozen=True)
class Paired:
    """Baseline and variant outcomes over the same problems and samples."""

    problems: list[str]
    baseline: dict[str, list[bool]]  # problem -> outcomes by sample index
    variant: dict[str, list[bool]]

    @property
    def n(self) -> dict[str, int]:
        return {p: len(self.baseline[p]) for p in self.problems}

    def table(self) -> tuple[int, int, int, int]:
        """The paired 2x2 table: (both pass, baseline only, variant only, both fail)."""
        both = base_only = var_only = neither = 0
        for problem in self.problems:
            for b, v in zip(self.baseline[problem], self.variant[problem], strict=True):
                both += b and v
                base_only += b and not v
                var_only += v and not b
                neither += not (b or v)
        return both, base_only, var_only, neither


def pair(baseline: dict[str, dict[int, bool]], variant: dict[str, dict[int, bool]], label: str) -> Paired:
    """Pair two outcome tables; InputError naming problems missing on one side or with unequal samples."""
    only_base = baseline.keys() - variant.keys()
    only_var = variant.keys() - baseline.keys()
    if only_base or only_var:
        parts = []
        if only_base:
            parts.append(f"missing from {label}: {_preview(only_base)}")
        if only_var:
            parts.append(f"missing from the baseline: {_preview(only_var)}")
        raise InputError(f"{label}: problems differ ({'; '.join(parts)})")
    unequal = [p for p in baseline if set(baseline[p]) != set(variant[p])]
    if unequal:
        first = unequal[0]
        raise InputError(
            f"{label}: unequal samples for {_preview(unequal)} (e.g. {first}: baseline has "
            f"{len(baseline[first])}, {label} has {len(variant[first])})"
        )
    problems = sorted(baseline)
    return Paired(
        problems=problems,
        baseline={p: [baseline[p][s] for s in sorted(baseline[p])] for p in problems},
        variant={p: [variant[p][s] for s in sorted(variant[p])] for p in problems},
    )
