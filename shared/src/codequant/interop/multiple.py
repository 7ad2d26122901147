"""MultiPL-E's experiment folders: one gzipped JSON file per problem.

``NAME.json.gz`` (``multipl_e/completions.py``): name, language, temperature, top_p, max_tokens, prompt, tests,
completions (a list of strings), stop_tokens. ``NAME.results.json.gz`` (``evaluation/src/main.py``): the same
without ``completions``, plus ``results``, one per completion: program, stdout, stderr, exit_code, status (OK,
Exception, SyntaxError or Timeout) and timestamp. MultiPL-E's ``pass_k.py`` counts a result as passed when its
status is OK and its exit code 0; it also reads plain ``.json`` files.

Files codequant writes also hold ``benchmark`` when the problem names alone would suggest another one (a
``humaneval`` record is named like MultiPL-E's HumanEval), so a round trip keeps the benchmark; MultiPL-E's own
scripts ignore the key.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from codequant.benchmarks import BENCHMARKS
from codequant.errors import InputError
from codequant.jsonl import read_lines
from codequant.languages import canonical_name, get_language

#: The statuses MultiPL-E reports; any other (ours: Failure, MemoryLimit, ...) it would count as Exception.
STATUSES = ("OK", "Exception", "SyntaxError", "Timeout")
#: Sampling settings a MultiPL-E file records about its completions.
SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens")
RESULTS_SUFFIXES = (".results.json.gz", ".results.json")
COMPLETIONS_SUFFIXES = (".json.gz", ".json")

Located = tuple[str, dict[str, Any]]


def read_experiments(
    paths: list[Path], benchmark: str | None = None, inferred: set[str] | None = None
) -> list[Located]:
    """Records (each with where it came from) of MultiPL-E folders or files, one per completion or result.

    A folder's result files are read when it has any, else its completion files. Records get our field names:
    name, benchmark (``benchmark``, else the file's own ``benchmark`` key, else ``multiple-humaneval-LANG`` for
    HumanEval problems in a language we run, then added to ``inferred``), language (ours where known), sample,
    prompt, tests, stop_tokens, the sampling settings, and either ``completion`` or the result's status, passed,
    exit_code, stdout, stderr, timestamp (and ``completion`` cut from the program, or the whole ``program`` when it
    is not composed as prompt + completion + tests).
    """
    located: list[Located] = []
    for path in paths:
        for file in _files(path):
            located.extend(_read_file(file, benchmark, inferred))
    return located


def _files(path: Path) -> list[Path]:
    """The problem files a path names: itself, or a folder's result files (else its completion files)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file())
    results = [p for p in files if p.name.endswith(RESULTS_SUFFIXES)]
    completions = [p for p in files if p.name.endswith(COMPLETIONS_SUFFIXES) and p not in results]
    chosen = results or completions
    if not chosen:
        raise InputError(f"{path}: no MultiPL-E files (*.json.gz, *.results.json.gz) in this folder")
    return chosen


def _load(file: Path) -> dict[str, Any]:
    """One problem file's JSON object; InputError naming the file for anything else."""
    try:
        data = json.loads("".join(read_lines(file, expected="a MultiPL-E file")))
    except json.JSONDecodeError as exc:
        raise InputError(f"{file}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(f"{file}: expected a JSON object, got {type(data).__name__}")
    return data


def _field(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        found = "missing" if key not in data else f"a {type(value).__name__}"
        raise InputError(f"{where}: field {key!r}: expected a {kind.__name__}, got {found}")
    return value


def _read_file(file: Path, benchmark: str | None, inferred: set[str] | None) -> list[Located]:
    data = _load(file)
    where = str(file)
    name = _field(data, "name", str, where)
    language = _field(data, "language", str, where)
    prompt = _field(data, "prompt", str, where)
    tests = _field(data, "tests", str, where)
    stops = data.get("stop_tokens", [])
    if not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise InputError(f"{where}: field 'stop_tokens': expected a list of strings")
    head: dict[str, Any] = {"name": name}
    recorded = data.get("benchmark")
    if recorded is not None and recorded not in BENCHMARKS:
        raise InputError(f"{where}: field 'benchmark': unknown benchmark {recorded!r}; known: {', '.join(BENCHMARKS)}")
    label = benchmark or recorded or _benchmark_of(name, language)
    if label:
        head["benchmark"] = label
        if not benchmark and not recorded and inferred is not None:
            inferred.add(label)
    head |= {"language": canonical_name(language) or language, "prompt": prompt, "tests": tests, "stop_tokens": stops}
    head |= {key: data[key] for key in SAMPLING_FIELDS if key in data}
    if file.name.endswith(RESULTS_SUFFIXES):
        results = _field(data, "results", list, where)
        return [_result(head, i, r, f"{where}: results[{i}]") for i, r in enumerate(results)]
    completions = _field(data, "completions", list, where)
    located = []
    for index, completion in enumerate(completions):
        if not isinstance(completion, str):
            raise InputError(f"{where}: field 'completions': item {index} is not a string")
        located.append((f"{where}: completions[{index}]", {**head, "sample": index, "completion": completion}))
    return located


def _benchmark_of(name: str, language: str) -> str | None:
    """Our MultiPL-E HumanEval benchmark for a HumanEval problem in a language it covers, else None."""
    candidate = f"multiple-humaneval-{language}"
    return candidate if name.startswith("HumanEval_") and candidate in BENCHMARKS else None


def _result(head: dict[str, Any], index: int, result: Any, where: str) -> Located:
    if not isinstance(result, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(result).__name__}")
    program = _field(result, "program", str, where)
    status = _field(result, "status", str, where)
    exit_code = result.get("exit_code")
    if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
        raise InputError(f"{where}: field 'exit_code': expected an integer or null")
    record = {**head, "sample": index}
    prompt, suffix = head["prompt"], "\n" + head["tests"]
    if program.startswith(prompt) and program.endswith(suffix) and len(program) >= len(prompt) + len(suffix):
        record["completion"] = program[len(prompt) : len(program) - len(suffix)]
    else:
        record["program"] = program
    record |= {
        "status": status,
        "passed": status == "OK" and exit_code == 0,  # pass_k.py's rule
        "exit_code": exit_code,
        "stdout": result.get("stdout") or "",
        "stderr": result.get("stderr") or "",
    }
    if "timestamp" in result:
        record["timestamp"] = result["timestamp"]
    return where, record


def write_experiment(out: Path, located: list[Located]) -> int:
    """Write records as one MultiPL-E folder; return the number of problem files.

    Executed records (with ``status``) give ``NAME.results.json.gz`` files, others ``NAME.json.gz`` completion
    files. Records need name, language, prompt, completion (or program, for results), tests; samples of a
    problem are ordered by ``sample``. ``out`` must be absent or an empty folder; it appears whole or not at all.
    """
    executed = {"status" in record for _, record in located}
    if len(executed) > 1:
        raise InputError("records mix executed results and bare completions; convert them separately")
    groups: dict[str, list[Located]] = {}
    for where, record in located:
        name = record.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise InputError(f"{where}: field 'name': expected a file-safe problem name, got {name!r}")
        groups.setdefault(name, []).append((where, record))
    files = {}
    for name, group in groups.items():  # serialised as MultiPL-E does: results indented, completions not
        if executed == {True}:
            files[f"{name}.results.json.gz"] = json.dumps(_results_file(group), indent=2)
        else:
            files[f"{name}.json.gz"] = json.dumps(_completions_file(group))
    _write_folder(out, files)
    return len(files)


def _ordered(group: list[Located]) -> list[Located]:
    """A problem's records in ``sample`` order (in file order if some have none); InputError on a repeated one."""
    seen: dict[int, str] = {}
    for where, record in group:
        sample = record.get("sample")
        if isinstance(sample, int) and sample in seen:
            raise InputError(f"{where}: field 'sample': {record['name']} sample {sample} repeats {seen[sample]}")
        if isinstance(sample, int):
            seen[sample] = where
    if len(seen) < len(group):
        return group
    return sorted(group, key=lambda item: item[1]["sample"])


def _header(where: str, record: dict[str, Any]) -> dict[str, Any]:
    """The problem fields of a MultiPL-E file, in its key order."""
    for key in ("language", "prompt", "tests"):
        _field(record, key, str, where)
    known = canonical_name(record["language"])
    header: dict[str, Any] = {"name": record["name"]}
    header["language"] = get_language(known).multiple_name if known else record["language"]
    header |= {key: record[key] for key in SAMPLING_FIELDS if record.get(key) is not None}
    header |= {"prompt": record["prompt"], "tests": record["tests"]}
    return header


def _completions_file(group: list[Located]) -> dict[str, Any]:
    group = _ordered(group)
    data = _header(*group[0])
    data["completions"] = [_field(record, "completion", str, where) for where, record in group]
    data["stop_tokens"] = group[0][1].get("stop_tokens", [])
    return data | _benchmark_key(group[0][1], data["language"])


def _results_file(group: list[Located]) -> dict[str, Any]:
    group = _ordered(group)
    data = _header(*group[0])
    data["stop_tokens"] = group[0][1].get("stop_tokens", [])
    now = int(time.time())
    results = []
    for where, record in group:
        if "program" in record:
            program = _field(record, "program", str, where)
        else:
            program = record["prompt"] + _field(record, "completion", str, where) + "\n" + record["tests"]
        status = _field(record, "status", str, where)
        exit_code = record.get("exit_code")
        results.append(
            {
                "program": program,
                "stdout": record.get("stdout") or "",
                "stderr": record.get("stderr") or "",
                "exit_code": -1 if exit_code is None else exit_code,
                "status": status if status in STATUSES else "Exception",
                "timestamp": record.get("timestamp", now),
            }
        )
    data["results"] = results
    return data | _benchmark_key(group[0][1], data["language"])


def _benchmark_key(record: dict[str, Any], language: str) -> dict[str, Any]:
    """``{"benchmark": ...}`` (last, after MultiPL-E's own keys) when the problem's name would not say it."""
    benchmark = record.get("benchmark")
    return {"benchmark": benchmark} if benchmark and benchmark != _benchmark_of(record["name"], language) else {}


def _write_folder(out: Path, files: dict[str, str]) -> None:
    """Write gzipped files into a new folder renamed onto ``out`` at the end (nothing half-written)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for filename, text in files.items():
            with gzip.open(tmp / filename, "wt", encoding="utf-8") as handle:
                handle.write(text)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
        raise
