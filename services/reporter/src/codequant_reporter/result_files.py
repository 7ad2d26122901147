"""Execution-result JSONL files paired with a baseline's, per benchmark (what `compare` and `gate` read)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codequant.errors import InputError
from codequant.jsonl import read_input_records
from codequant_reporter.pairing import Paired, outcomes, pair

#: Sampling settings records carry (from `codequant generate` or MultiPL-E): samples to pair must share them.
SAMPLING = ("temperature", "top_p")


@dataclass(frozen=True)
class PairedFile:
    """One variant file's outcomes on one benchmark, paired with the baseline's."""

    variant: str  # the records' `variant`, else the file's (or folder's) name without suffix
    benchmark: str  # "" when the records name none
    paired: Paired


def _sampling(records: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """The (temperature, top_p) pairs the records were sampled with; records that say nothing are left out."""
    return {tuple(r.get(k) for k in SAMPLING) for r in records if any(k in r for k in SAMPLING)}


def by_benchmark(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[str(record.get("benchmark", ""))].append(record)
    return groups


def read_results(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL file, or of every ``*.jsonl`` file in a folder (a study's ``results/MODEL/VARIANT``)."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path}: a folder without .jsonl files")
    return [record for file in files for _, record in read_input_records(file)]


def paired_files(baseline: Path, variants: list[Path], warn: Callable[[str], None]) -> list[PairedFile]:
    """Each variant file (or folder of files) paired with the baseline, per benchmark; InputError naming the file
    for records that cannot be paired, ``warn`` for variants sampled with other settings than the baseline."""
    base_records = read_results(baseline)
    base_groups = by_benchmark(base_records)
    found = []
    for path in variants:
        records = read_results(path)
        theirs, ours = _sampling(base_records), _sampling(records)
        if theirs and ours and theirs != ours:
            warn(
                f"warning: {path}: sampled with (temperature, top_p) {sorted(ours)}, the baseline {baseline} with "
                f"{sorted(theirs)}"
            )
        name = next((str(r["variant"]) for r in records if r.get("variant")), path.stem)
        groups = by_benchmark(records)
        if groups.keys() != base_groups.keys():
            raise InputError(f"{path}: benchmarks {sorted(groups)} differ from the baseline's {sorted(base_groups)}")
        for benchmark, group in groups.items():
            label = f"{path}" + (f" [{benchmark}]" if benchmark else "")
            found.append(
                PairedFile(
                    name,
                    benchmark,
                    pair(outcomes(base_groups[benchmark], f"{baseline}"), outcomes(group, label), label),
                )
            )
    return found
