"""A user's own benchmark: a JSONL file of MultiPL-E records, named by path in a study."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from codequant.benchmarks.problem import Problem
from codequant.benchmarks.registry import BENCHMARKS, USER_BENCHMARKS, BenchmarkInfo
from codequant.errors import InputError
from codequant.jsonl import read_jsonl_numbered
from codequant.languages import accepted_names, canonical_name

REQUIRED = ("name", "language", "prompt", "tests", "stop_tokens")
OPTIONAL_TEXT = ("canonical_solution", "entry_point", "level")


def load_user_benchmark(name: str, path: str | Path) -> tuple[list[Problem], BenchmarkInfo, str]:
    """The problems of a user's JSONL file, their BenchmarkInfo (also kept in ``USER_BENCHMARKS``) and a
    provenance string.

    Each line is one MultiPL-E record (``name``, ``language``, ``prompt``, ``tests``, ``stop_tokens``; other
    MultiPL-E keys are ignored; ``canonical_solution`` is an optional reference completion). Every problem is
    in the file's one language. Errors name ``file:line: field``.
    """
    if name in BENCHMARKS:
        raise InputError(f"benchmark name {name!r} is taken by a built-in benchmark; name yours differently")
    path = Path(path)
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    language = None
    for line, row in read_jsonl_numbered(path):
        problem = _problem(row, name, f"{path}:{line}")
        if language is None:
            language = problem.language
        elif problem.language != language:
            raise InputError(
                f"{path}:{line}: field 'language' is {row['language']!r}, but the file's first problem is "
                f"{language!r} (one language per benchmark)"
            )
        if problem.name in seen:
            raise InputError(f"{path}:{line}: field 'name' {problem.name!r} repeats line {seen[problem.name]}")
        seen[problem.name] = line
        problems.append(problem)
    if not problems:
        raise InputError(f"{path}: no problems in the file")
    assert language is not None
    info = BenchmarkInfo(name, name, language, "user", str(path), len(problems), "user-supplied")
    USER_BENCHMARKS[name] = info
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return problems, info, f"{path} sha256:{digest}"


def _problem(row: dict[str, Any], benchmark: str, where: str) -> Problem:
    for field in REQUIRED:
        if field not in row:
            raise InputError(f"{where}: field {field!r} is missing")
    for field in ("name", "prompt", "tests", *(f for f in OPTIONAL_TEXT if row.get(f) is not None)):
        if not isinstance(row[field], str):
            raise InputError(f"{where}: field {field!r} must be a string, got {type(row[field]).__name__}")
    if not row["name"].strip():
        raise InputError(f"{where}: field 'name' is empty")
    language = canonical_name(row["language"]) if isinstance(row["language"], str) else None
    if language is None:
        known = ", ".join(accepted_names())
        raise InputError(f"{where}: field 'language' must be one of {known}, got {row['language']!r}")
    stops = row["stop_tokens"]
    if not (isinstance(stops, list) and all(isinstance(s, str) and s for s in stops)):
        raise InputError(f"{where}: field 'stop_tokens' must be a list of non-empty strings")
    return Problem(
        name=row["name"],
        language=language,
        prompt=row["prompt"],
        tests=row["tests"],
        stop_tokens=stops,
        benchmark=benchmark,
        level=row.get("level"),
        entry_point=row.get("entry_point"),
        canonical_solution=row.get("canonical_solution"),
    )
