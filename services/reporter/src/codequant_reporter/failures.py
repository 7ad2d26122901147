"""How each failing sample failed, from what the execution records hold: status, stderr, the completion and why
generation stopped."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from codequant.results import completion_keys
from codequant.store import Completion, Execution, Store
from codequant_reporter.study_data import StudyData

#: Failure kinds in the order the taxonomy table shows them (an exception's kind is "exception: TYPE").
KINDS = (
    "syntax error",
    "compile error",
    "exception",
    "assertion failure",
    "timeout",
    "memory",
    "output limit",
    "killed",
    "empty completion",
    "truncated completion",
    "repetition",
    "sandbox error",
)
_BY_STATUS = {
    "Failure": "assertion failure",
    "Timeout": "timeout",
    "MemoryLimit": "memory",
    "OutputLimit": "output limit",
    "Killed": "killed",
    "SandboxError": "sandbox error",
}
_EXCEPTION = re.compile(r"\b([A-Za-z_][\w.$]*(?:Error|Exception|Exit|Interrupt))\b")
_CHUNK = 500


def exception_type(stderr: str) -> str | None:
    """The last exception class named in ``stderr`` (package prefix dropped), e.g. ``ZeroDivisionError``."""
    found = _EXCEPTION.findall(stderr or "")
    return found[-1].rsplit(".", 1)[-1] if found else None


def repetitive(completion: str) -> bool:
    """The completion loops: at least 6 non-blank lines of which at most a third are distinct."""
    lines = [line.strip() for line in completion.splitlines() if line.strip()]
    return len(lines) >= 6 and len(set(lines)) * 3 <= len(lines)


def failure_kind(status: str, stderr: str, completion: str, finish_reason: str | None, language: str) -> str | None:
    """The failure kind of one executed sample (None when it passed). What the model produced comes first
    (empty, repeating, cut at the token limit), then what the execution said."""
    if status == "OK":
        return None
    if not completion.strip():
        return "empty completion"
    if repetitive(completion):
        return "repetition"
    if finish_reason == "length":
        return "truncated completion"
    if status == "SyntaxError":
        return "syntax error" if language == "python" else "compile error"
    if status == "Exception":
        found = exception_type(stderr)
        return f"exception: {found}" if found else "exception"
    return _BY_STATUS.get(status, status)


@dataclass(frozen=True)
class Sample:
    """One executed sample as the failure analyses need it."""

    passed: bool
    kind: str | None
    completion: str
    error: str  # the tail of stderr (or stdout when stderr is empty)


def load_samples(store: Store, data: StudyData) -> dict[tuple[str, str], dict[str, dict[int, Sample]]]:
    """(variant key, benchmark) -> problem -> sample -> its execution details, for every usable variant."""
    found: dict[tuple[str, str], dict[str, dict[int, Sample]]] = {}
    for model in data.models:
        for variant in model.variants:
            if not data.usable(variant):
                continue
            for name, bench in data.benchmarks.items():
                language = {p.name: p.language for p in bench.problems}
                keys = completion_keys(data.study, variant.key, name, language)
                by_key = {key: pair for pair, key in keys.items()}
                table: dict[str, dict[int, Sample]] = {}
                values = list(by_key)
                with store.session() as session:
                    for start in range(0, len(values), _CHUNK):
                        query = (
                            select(Completion, Execution)
                            .join(Execution, Execution.key == Completion.execution_key)
                            .where(Completion.key.in_(values[start : start + _CHUNK]))
                        )
                        for completion, execution in session.execute(query):
                            problem, sample = by_key[completion.key]
                            error = (execution.stderr or execution.stdout or "").strip()[-600:]
                            kind = failure_kind(
                                execution.status,
                                execution.stderr or "",
                                completion.completion,
                                completion.finish_reason,
                                language[problem],
                            )
                            table.setdefault(problem, {})[sample] = Sample(
                                execution.passed, kind, completion.completion, error
                            )
                found[(variant.key, name)] = table
    return found
