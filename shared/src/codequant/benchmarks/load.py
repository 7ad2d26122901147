"""``load_benchmark``: upstream rows -> repaired, filtered Problem records with provenance."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from codequant import settings
from codequant.benchmarks import convert
from codequant.benchmarks.problem import Problem
from codequant.benchmarks.registry import BENCHMARKS
from codequant.benchmarks.sources import read_rows
from codequant.benchmarks.user import load_user_benchmark
from codequant.errors import InputError
from codequant.jsonl import read_jsonl

_CONVERTERS = {
    "humaneval": convert.from_humaneval,
    "multiple": convert.from_multiple,
    "mceval": convert.from_mceval,
    "humaneval-plus": convert.from_humaneval_plus,
    "mbpp-plus": convert.from_mbpp_plus,
    "mbpp": convert.from_mbpp,
}

#: Known upstream defects (see ../shared/DESIGN.md): source_id -> (action, reason).
KNOWN_DEFECTS: dict[tuple[str, str], tuple[str, str]] = {
    ("mceval-python", "Python/9"): (
        "repair",
        "test function test_find_number_combinations was never called; call added",
    ),
    ("mceval-java", "Java/53"): (
        "repair",
        "helper testReverseWords lived in the canonical solution; moved into the tests",
    ),
    ("mceval-java", "Java/2"): ("exclude", "docstring example (2000, 4) => 2008 contradicts the test (2012)"),
}


@dataclass
class BenchmarkSet:
    """The problems of one benchmark as used in a study, and what was changed on the way."""

    name: str
    problems: list[Problem]
    provenance: str
    excluded: dict[str, str] = field(default_factory=dict)  # problem name -> reason
    repaired: dict[str, str] = field(default_factory=dict)  # problem name -> what was done

    def by_name(self) -> dict[str, Problem]:
        return {p.name: p for p in self.problems}


def load_benchmark(
    name: str,
    *,
    path: str | Path | None = None,
    data_dir: str | Path | None = None,
    source: str = "auto",
    exclude_humaneval_overlap: bool = False,
    problems: list[str] | None = None,
    limit: int | None = None,
) -> BenchmarkSet:
    """Load a benchmark by name (or, with ``path``, a user's JSONL file of MultiPL-E records under that name);
    known-defective items are repaired or excluded and listed.

    ``exclude_humaneval_overlap`` (mceval-python only) drops the 8 items duplicating
    HumanEval, the reference study's filter. ``problems`` keeps the named problems,
    ``limit`` the first N after that.
    """
    if path is not None:
        user_problems, _, provenance = load_user_benchmark(name, path)
        out = BenchmarkSet(name=name, problems=user_problems, provenance=provenance)
        return _select(out, problems, limit)
    info = BENCHMARKS.get(name)
    if info is None:
        raise InputError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    rows, provenance = read_rows(info, Path(data_dir) if data_dir else None, source)
    convert_row = _CONVERTERS[info.kind]
    out = BenchmarkSet(name=name, problems=[], provenance=provenance)
    for index, row in enumerate(rows, start=1):
        problem = convert_row(row, info, f"{provenance.split(' ')[0]}:{index}")
        if problem is None:  # outside the benchmark's test split
            continue
        action, reason = KNOWN_DEFECTS.get((name, problem.source_id or ""), (None, ""))
        if action == "exclude":
            out.excluded[problem.name] = reason
            continue
        if action == "repair":
            problem = _repair(problem)
            out.repaired[problem.name] = reason
        out.problems.append(problem)
    if exclude_humaneval_overlap:
        if name != "mceval-python":
            raise InputError("exclude_humaneval_overlap applies to mceval-python only")
        overlap = _humaneval_overlap(data_dir)
        for problem in [p for p in out.problems if p.source_id in overlap]:
            out.excluded[problem.name] = f"duplicates {overlap[problem.source_id]}"
        out.problems = [p for p in out.problems if p.source_id not in overlap]
    return _select(out, problems, limit)


def _select(out: BenchmarkSet, problems: list[str] | None, limit: int | None) -> BenchmarkSet:
    """Keep the named problems, then the first ``limit``."""
    name = out.name
    if problems is not None:
        known = out.by_name()
        unknown = [p for p in problems if p not in known and p not in out.excluded]
        if unknown:
            raise InputError(f"{name}: unknown problem(s) {', '.join(unknown)}")
        wanted = set(problems)
        out.problems = [p for p in out.problems if p.name in wanted]
    if limit is not None:
        out.problems = out.problems[:limit]
    return out


def _repair(problem: Problem) -> Problem:
    if problem.source_id == "Python/9":
        return replace(problem, tests=problem.tests + "\ntest_find_number_combinations()\n")
    # Java/53's helper is moved by the generic conversion (helpers after the method go to the tests).
    return problem


def _humaneval_overlap(data_dir: str | Path | None) -> dict[str, str]:
    folder = Path(data_dir) if data_dir else settings.data_dir()
    if folder is None:
        raise InputError(f"the HumanEval overlap list needs the local data folder (${settings.DATA_DIR_ENV})")
    path = folder / "mceval-python-humaneval-overlap.jsonl"
    return {row["task_id"]: row["humaneval_task_id"] for row in read_jsonl(path)}
