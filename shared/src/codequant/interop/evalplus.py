"""EvalPlus's samples file: JSON Lines, one sample per line, ``{"task_id": "HumanEval/0", "solution": PROGRAM}``
(the whole function, prompt included) or ``{"task_id", "completion"}`` (appended to EvalPlus's prompt); gzipped
when the name ends in ``.gz``. A task's samples are numbered in the order they appear. Also EvalPlus's
evaluation results (``*_eval_results.json``), read as executed records.

Samples codequant writes also hold ``benchmark`` when it is not the one a task id's prefix maps to by default
(``humaneval`` samples, whose tests are HumanEval's, not HumanEval+'s), so a round trip keeps it; EvalPlus reads
only ``task_id`` and ``solution``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from codequant.benchmarks import BENCHMARKS, Problem
from codequant.errors import InputError
from codequant.interop.problems import ProblemLookup
from codequant.jsonl import atomic_writer, read_jsonl_numbered, read_lines

Located = tuple[str, dict[str, Any]]

#: The benchmark an EvalPlus task id prefix belongs to when the user names none.
BENCHMARK_OF_PREFIX = {"HumanEval": "humaneval-plus", "Mbpp": "mbpp-plus"}
#: Benchmarks whose tests are EvalPlus's extended ("plus") tests.
PLUS_BENCHMARKS = {"humaneval-plus", "mbpp-plus"}
_RESULT_FIELDS = ("solution", "base_status", "plus_status")


def read_samples(
    paths: list[Path],
    lookup: ProblemLookup,
    benchmark: str | None = None,
    inferred: set[str] | None = None,
) -> list[Located]:
    """Records of EvalPlus samples files (execute-ready) and evaluation results files (``*_eval_results.json``,
    already executed; see ``_read_eval_results``): name, benchmark, language, sample, task_id, prompt,
    completion, tests, stop_tokens. A ``solution`` becomes the completion of an empty prompt, so the program run
    is the solution followed by the tests. Task ids map to ``benchmark``'s problems, else to the sample's own
    ``benchmark``, else by their prefix (HumanEval/ -> humaneval-plus, Mbpp/ -> mbpp-plus; benchmarks so chosen
    are added to ``inferred``)."""
    located: list[Located] = []
    counts: dict[str, int] = {}
    for path in paths:
        if path.name.endswith(".json"):
            located.extend(_read_eval_results(path, lookup, benchmark, inferred))
            continue
        for number, sample in read_jsonl_numbered(path):
            where = f"{path}:{number}"
            task_id = sample.get("task_id")
            if not isinstance(task_id, str):
                raise InputError(f"{where}: field 'task_id': expected a string like 'HumanEval/0'")
            recorded = sample.get("benchmark")
            if recorded is not None and recorded not in BENCHMARKS:
                known = ", ".join(BENCHMARKS)
                raise InputError(f"{where}: field 'benchmark': unknown benchmark {recorded!r}; known: {known}")
            problem = _problem(lookup, task_id, benchmark or recorded, where, inferred)
            if isinstance(sample.get("solution"), str):
                prompt, completion = "", sample["solution"]
            elif isinstance(sample.get("completion"), str):
                prompt, completion = problem.prompt, sample["completion"]
            else:
                raise InputError(f"{where}: field 'solution': missing (give 'solution' or 'completion', a string)")
            counts[task_id] = counts.get(task_id, 0) + 1
            located.append((where, _record(problem, task_id, counts[task_id] - 1, prompt, completion)))
    return located


def _problem(
    lookup: ProblemLookup, task_id: str, benchmark: str | None, where: str, inferred: set[str] | None
) -> Problem:
    """The problem ``task_id`` names in ``benchmark``, else in the benchmark its prefix maps to by default (which
    is added to ``inferred``)."""
    if benchmark:
        return lookup.by_task_id(benchmark, task_id, where)
    name = _default_benchmark(task_id)
    if name is None:
        raise InputError(f"{where}: field 'task_id': {task_id!r} is not HumanEval/N or Mbpp/N; give --benchmark")
    try:
        problem = lookup.by_task_id(name, task_id, where)
    except InputError as exc:
        hint = f"--benchmark {name.removesuffix('-plus')} for the original tests"
        raise InputError(f"{exc}; {task_id.split('/')[0]}/ task ids are read as {name} by default ({hint})") from None
    if inferred is not None:
        inferred.add(name)
    return problem


def _default_benchmark(task_id: str) -> str | None:
    return BENCHMARK_OF_PREFIX.get(task_id.split("/")[0])


def _record(problem: Problem, task_id: str, sample: int, prompt: str, completion: str) -> dict[str, Any]:
    return {
        "name": problem.name,
        "benchmark": problem.benchmark,
        "language": problem.language,
        "sample": sample,
        "task_id": task_id,
        "prompt": prompt,
        "completion": completion,
        "tests": problem.tests,
        "stop_tokens": problem.stop_tokens,
    }


def _read_eval_results(
    path: Path, lookup: ProblemLookup, benchmark: str | None, inferred: set[str] | None
) -> list[Located]:
    """Executed records of an EvalPlus evaluation results file (``evalplus/evaluate.py``): ``{"date", "hash",
    "eval": {task_id: [{"task_id", "solution", "base_status", "plus_status", "base_fail_tests",
    "plus_fail_tests"}, ...]}, "pass_at_k"}``, samples in order; verdicts are pass, fail or timeout.

    A sample passes when its base verdict is pass and, on HumanEval+ and MBPP+, its plus verdict too (EvalPlus's
    "base + extra" pass@k); status is OK, Timeout when a verdict is timeout, else Failure."""
    try:
        data = json.loads("".join(read_lines(path, expected="an EvalPlus results file")))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    evals = data.get("eval") if isinstance(data, dict) else None
    if not isinstance(evals, dict):
        raise InputError(f"{path}: field 'eval': expected an object of task id -> results (EvalPlus eval results)")
    located: list[Located] = []
    for task_id, samples in evals.items():
        where = f"{path}: eval[{task_id!r}]"
        if not isinstance(samples, list):
            raise InputError(f"{where}: expected a list of results")
        problem = _problem(lookup, task_id, benchmark, where, inferred)
        name = problem.benchmark
        for index, sample in enumerate(samples):
            at = f"{where}[{index}]"
            fields = {key: sample.get(key) if isinstance(sample, dict) else None for key in _RESULT_FIELDS}
            for key in ("solution", "base_status"):
                if not isinstance(fields[key], str):
                    raise InputError(f"{at}: field {key!r}: expected a string")
            verdicts = [fields["base_status"]]
            if name in PLUS_BENCHMARKS:
                if not isinstance(fields["plus_status"], str):
                    raise InputError(f"{at}: field 'plus_status': no plus verdict (a --base-only run?) for {name}")
                verdicts.append(fields["plus_status"])
            passed = all(v == "pass" for v in verdicts)
            status = "OK" if passed else "Timeout" if "timeout" in verdicts else "Failure"
            record = _record(problem, task_id, index, "", fields["solution"])
            record |= {"status": status, "passed": passed}
            record |= {"base_status": fields["base_status"], "plus_status": fields["plus_status"]}
            located.append((at, record))
    return located


def write_samples(out: Path, located: list[Located], lookup: ProblemLookup) -> int:
    """Write records as an EvalPlus samples file of whole solutions (prompt + completion); return the count.

    The task id is the record's ``task_id``, else its problem's upstream id looked up in its benchmark; the
    record's benchmark is kept when the task id alone would map to another one."""
    samples = []
    for where, record in located:
        if record.get("language") not in ("python", "py"):
            raise InputError(f"{where}: field 'language': EvalPlus runs Python, got {record.get('language')!r}")
        if not isinstance(record.get("completion"), str):
            raise InputError(f"{where}: field 'completion': missing (EvalPlus needs the completion, not a program)")
        task_id = record.get("task_id")
        if not isinstance(task_id, str):
            task_id = lookup.problem(record, where).source_id
            if task_id is None:
                raise InputError(f"{where}: field 'name': {record['name']} has no upstream task id")
        prompt = record["prompt"] if isinstance(record.get("prompt"), str) else lookup.problem(record, where).prompt
        sample = {"task_id": task_id, "solution": prompt + record["completion"]}
        benchmark = record.get("benchmark")
        if benchmark and benchmark != _default_benchmark(task_id):
            sample["benchmark"] = benchmark
        samples.append(sample)
    text = "".join(json.dumps(sample) + "\n" for sample in samples)
    with atomic_writer(out) as handle:
        if out.name.endswith(".gz"):
            handle.buffer.write(gzip.compress(text.encode("utf-8")))
        else:
            handle.write(text)
    return len(samples)
