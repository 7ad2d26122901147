"""Turn upstream rows into Problem records in MultiPL-E's completion form."""

from __future__ import annotations

import re
from typing import Any

from codequant.benchmarks.evalplus_release import is_release_row, release_tests
from codequant.benchmarks.numpy_standin import without_numpy
from codequant.benchmarks.problem import MBPP_STOP_TOKENS, Problem
from codequant.benchmarks.registry import BenchmarkInfo
from codequant.errors import InputError
from codequant.javasource import matching_brace
from codequant.languages import canonical_name, get_language
from codequant.languages.python import PYTHON_STOP_TOKENS

#: MBPP's test split: task ids 11-510 (1-10 are few-shot prompts, 511-974 train and validation).
MBPP_TEST_IDS = range(11, 511)


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
    language = canonical_name(row["language"])
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


def from_humaneval_plus(row: dict[str, Any], info: BenchmarkInfo, where: str) -> Problem:
    """HumanEval+ (EvalPlus), in either of its two forms, composed like HumanEval.

    The hub export (``evalplus/humanevalplus``): ``test`` holds every base and extra input with its expected
    output; its numpy import becomes a pure-Python stand-in (``numpy_standin``). EvalPlus's release file
    (``base_input``, ``plus_input``, ``atol``; its ``test`` is HumanEval's base test): tests are built from the
    inputs and the reference solution (``evalplus_release``).
    """
    _require(row, ("task_id", "prompt", "test", "entry_point", "canonical_solution"), where)
    if is_release_row(row):
        test = release_tests(row, where)
    else:
        test, _ = without_numpy(row["test"])
    number = row["task_id"].split("/")[-1]
    return Problem(
        name=f"HumanEvalPlus_{number}_{row['entry_point']}",
        language="python",
        prompt=row["prompt"],
        tests=test + f"\n\ncheck({row['entry_point']})\n",
        stop_tokens=list(PYTHON_STOP_TOKENS),
        benchmark=info.name,
        entry_point=row["entry_point"],
        canonical_solution=row["canonical_solution"],
        source_id=row["task_id"],
    )


def _mbpp_prompt(description: str, first_test: str) -> str:
    """The MBPP completion prompt of bigcode-evaluation-harness and EvalPlus: description and one test as a
    docstring; the model writes the whole function."""
    return f'"""\n{description.strip()}\n{first_test.strip()}\n"""\n'


def _mbpp_entry_point(code: str, first_test: str) -> str | None:
    """The function the tests call: the first function defined in ``code`` whose name the first test uses."""
    names = re.findall(r"^def\s+(\w+)\s*\(", code, re.MULTILINE)
    return next((n for n in names if re.search(rf"\b{n}\s*\(", first_test)), names[0] if names else None)


def _test_list(row: dict[str, Any], where: str) -> list[str]:
    tests = row.get("test_list")
    if not (isinstance(tests, list) and tests and all(isinstance(t, str) for t in tests)):
        raise InputError(f"{where}: field 'test_list' must be a non-empty list of strings")
    return tests


def from_mbpp(row: dict[str, Any], info: BenchmarkInfo, where: str) -> Problem | None:
    """MBPP ("full": ``text``, or "sanitized": ``prompt``): tests are the setup code and the ``test_list``
    asserts. Rows outside the test split (task ids 11-510) give None."""
    description = row.get("text", row.get("prompt"))
    if not isinstance(description, str):
        raise InputError(f"{where}: missing or non-string field(s) text")
    _require(row, ("code",), where)
    task_id = row.get("task_id")
    if not isinstance(task_id, int) or isinstance(task_id, bool):
        raise InputError(f"{where}: field 'task_id' must be an integer")
    if task_id not in MBPP_TEST_IDS:
        return None
    tests = _test_list(row, where)
    setup = [row.get("test_setup_code") or "", *(row.get("test_imports") or [])]
    entry = _mbpp_entry_point(row["code"], tests[0])
    return Problem(
        name=f"Mbpp_{task_id}_{entry}",
        language="python",
        prompt=_mbpp_prompt(description, tests[0]),
        tests="\n".join(s for s in setup if s.strip()) + "\n" + "\n".join(tests) + "\n",
        stop_tokens=list(MBPP_STOP_TOKENS),
        benchmark=info.name,
        entry_point=entry,
        canonical_solution=row["code"],
        source_id=str(task_id),
    )


def from_mbpp_plus(row: dict[str, Any], info: BenchmarkInfo, where: str) -> Problem:
    """MBPP+ (EvalPlus, as on the hub): MBPP's prompt form, with ``test`` (base and extra inputs with expected
    outputs) as the tests; its numpy import becomes a pure-Python stand-in."""
    _require(row, ("prompt", "code", "test"), where)
    task_id = row.get("task_id")
    number = str(task_id).split("/")[-1]
    if not number.isdigit():
        raise InputError(f"{where}: field 'task_id' must be a number or Mbpp/<number>, got {task_id!r}")
    tests = _test_list(row, where)
    test, _ = without_numpy(row["test"])
    imports = [i for i in row.get("test_imports") or [] if isinstance(i, str) and i.strip()]
    entry = row.get("entry_point") or _mbpp_entry_point(row["code"], tests[0])
    return Problem(
        name=f"MbppPlus_{number}_{entry}",
        language="python",
        prompt=_mbpp_prompt(row["prompt"], tests[0]),
        tests="\n".join(imports) + "\n" + test + "\n",
        stop_tokens=list(MBPP_STOP_TOKENS),
        benchmark=info.name,
        entry_point=entry,
        canonical_solution=row["code"],
        source_id=f"Mbpp/{number}",
    )


def from_mceval(row: dict[str, Any], info: BenchmarkInfo, where: str) -> Problem:
    """McEval: reshape into prompt + completion + "\\n" + tests, laid out as the language's tests are
    (``Language.tests_close_block``).

    Tests after a whole completion (Python): McEval composes ``prompt + "\\n" + solution + "\\n\\n" + test``; we
    move the newline into the prompt and the blank line into the tests, so the reference program is unchanged.
    Tests that close the completion's block (Java): McEval's prompt ends at the method signature and its solution
    is the braced body; we end the prompt after ``{`` (MultiPL-E style), the tests start by closing the method,
    and the stop token is the method's own closing brace.
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
    language = get_language(info.language)
    if not language.tests_close_block:
        return Problem(
            language=language.name,
            prompt=row["prompt"] + "\n",
            tests="\n" + row["test"] + "\n",
            stop_tokens=list(language.stop_tokens),
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
        language=language.name,
        prompt=row["prompt"].rstrip() + " {\n",
        tests=f"{indent}}}\n" + (helpers + "\n" if helpers.strip() else "") + row["test"] + "\n",
        stop_tokens=[f"\n{indent}}}\n"],
        canonical_solution=body.rstrip(" "),
        **common,
    )
