"""Turn upstream rows into Problem records in MultiPL-E's completion form."""

from __future__ import annotations

import re
from typing import Any

from codequant.benchmarks.problem import PYTHON_STOP_TOKENS, Problem
from codequant.benchmarks.registry import BenchmarkInfo
from codequant.errors import InputError
from codequant.javasource import matching_brace

_LANGUAGE = {"py": "python", "python": "python", "java": "java"}


def _require(row: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if not isinstance(row.get(k), str)]
    if missing:
        raise InputError(f"{where}: missing or non-string field(s) {', '.join(missing)}")


def from_humaneval(row: dict[str, Any], info: BenchmarkInfo, where: str) -> Problem:
    """OpenAI HumanEval: tests are the ``check`` function plus its call on the entry point."""
    _require(row, ("task_id", "prompt", "test", "entry_point", "canonical_solution"), where)
    number = row["task_id"].split("/")[-1]
    return Problem(
        name=f"HumanEval_{number}_{row['entry_point']}",
        language="python",
        prompt=row["prompt"],
        tests=row["test"] + f"\n\ncheck({row['entry_point']})\n",
        stop_tokens=list(PYTHON_STOP_TOKENS),
        benchmark=info.name,
        entry_point=row["entry_point"],
        canonical_solution=row["canonical_solution"],
        source_id=row["task_id"],
    )


def from_multiple(row: dict[str, Any], info: BenchmarkInfo, where: str) -> Problem:
    """MultiPL-E: already in completion form; only the language name is normalised."""
    _require(row, ("name", "language", "prompt", "tests"), where)
    language = _LANGUAGE.get(row["language"])
    if language != info.language:
        raise InputError(f"{where}: language {row['language']!r} does not belong in {info.name}")
    stops = row.get("stop_tokens")
    if not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise InputError(f"{where}: stop_tokens must be a list of strings")
    match = re.match(r"HumanEval_(\d+)_", row["name"])
    return Problem(
        name=row["name"],
        language=language,
        prompt=row["prompt"],
        tests=row["tests"],
        stop_tokens=stops,
        benchmark=info.name,
        source_id=f"HumanEval/{match.group(1)}" if match else None,
    )


def from_mceval(row: dict[str, Any], info: BenchmarkInfo, where: str) -> Problem:
    """McEval: reshape into prompt + completion + "\\n" + tests.

    Python: McEval composes ``prompt + "\\n" + solution + "\\n\\n" + test``; we move the
    newline into the prompt and the blank line into the tests, so the reference program
    is unchanged. Java: McEval's prompt ends at the method signature and its solution is
    the braced body; we end the prompt after ``{`` (MultiPL-E style), the tests start by
    closing the method, and the stop token is the method's own closing brace.
    """
    _require(row, ("task_id", "prompt", "test", "entry_point", "canonical_solution"), where)
    number = row["task_id"].split("/")[-1]
    common = {
        "name": f"McEval_{info.upstream_name}_{number}_{row['entry_point']}",
        "benchmark": info.name,
        "level": row.get("level"),
        "entry_point": row["entry_point"],
        "source_id": row["task_id"],
    }
    if info.language == "python":
        return Problem(
            language="python",
            prompt=row["prompt"] + "\n",
            tests="\n" + row["test"] + "\n",
            stop_tokens=list(PYTHON_STOP_TOKENS),
            canonical_solution=row["canonical_solution"],
            **common,
        )
    signature_line = row["prompt"].rstrip().rsplit("\n", 1)[-1]
    indent = signature_line[: len(signature_line) - len(signature_line.lstrip())]
    solution = row["canonical_solution"]
    opening = solution.index("{")
    try:
        closing = matching_brace(solution, opening)
    except ValueError:
        raise InputError(f"{where}: unbalanced braces in the canonical solution") from None
    body = solution[opening + 1 : closing]
    body = body.split("\n", 1)[1] if "\n" in body else body  # drop the rest of the "{" line
    # Anything after the method's closing brace (helper methods) is kept, after the method.
    helpers = solution[closing + 1 :].strip("\n")
    return Problem(
        language="java",
        prompt=row["prompt"].rstrip() + " {\n",
        tests=f"{indent}}}\n" + (helpers + "\n" if helpers.strip() else "") + row["test"] + "\n",
        stop_tokens=[f"\n{indent}}}\n"],
        canonical_solution=body.rstrip(" "),
        **common,
    )
