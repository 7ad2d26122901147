"""``execute_records``: the one code path behind the CLI, the Celery task and the orchestrator; ``execute_batch``
is the execute stage's function on typed payloads (both run modes call it)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from codequant.environment import describe
from codequant.errors import InputError
from codequant.keys import execution_key
from codequant.languages import canonical_name
from codequant.limits import Limits
from codequant.payloads import ExecuteRequest, ExecuteResult, ExecutionOutcome
from codequant_executor.infrastructure import limits_of, retry_infrastructure
from codequant_executor.java_compiler import HARNESS_JAR, java_home, support_classes
from codequant_executor.java_runner import JVM_FLAGS, javatuples_jar
from codequant_executor.pool import ExecutorPool, insecure_from_env
from codequant_executor.provenance import execution_provenance, flat_provenance
from codequant_executor.runner import Runner, RunnerSetup, UnknownLanguage, runner_class, runner_languages

#: The executor's public entry points: records in, verdicts out; the stage function; the pool that runs programs;
#: the runners' base class and registry (a new language's runner subclasses ``Runner``); how a Java run is started
#: (the JDK, the JVM's flags, the harness jar in the support classes' folder, javatuples), for benchmarks.
__all__ = [
    "HARNESS_JAR",
    "JVM_FLAGS",
    "ExecutorPool",
    "Runner",
    "RunnerSetup",
    "UnknownLanguage",
    "close_shared_pool",
    "execute_batch",
    "execute_records",
    "execution_provenance",
    "iter_execute_records",
    "java_home",
    "javatuples_jar",
    "program_of",
    "runner_class",
    "runner_languages",
    "shared_pool",
    "support_classes",
]

_POOL: ExecutorPool | None = None
_POOL_LOCK = threading.Lock()


def shared_pool(workers: int | None = None, *, insecure: bool | None = None) -> ExecutorPool:
    """The process-wide executor pool (its Java compile servers stay warm between calls).

    ``insecure`` (default: ``$CODEQUANT_EXECUTOR_INSECURE``) allows running without network isolation.
    """
    global _POOL
    insecure = insecure_from_env() if insecure is None else insecure
    with _POOL_LOCK:
        if _POOL is None or (workers is not None and workers != _POOL.workers):
            if _POOL is not None:
                _POOL.close()
                _POOL = None
            _POOL = ExecutorPool(workers=workers, insecure=insecure)
        return _POOL


def close_shared_pool() -> None:
    """Close the process-wide pool (its fork servers, compile servers, folders and slots), if there is one."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.close()
            _POOL = None


def program_of(record: dict[str, Any], where: str = "record") -> tuple[str, str, int]:
    """(program, language, first line of the tests or 0) of an input record; InputError naming the field otherwise.

    MultiPL-E's language names (``py``, ``js``) are accepted for ours."""
    given = record.get("language")
    language = canonical_name(given) if isinstance(given, str) else None
    if language not in runner_languages():
        raise InputError(f"{where}: field 'language' must be one of {', '.join(runner_languages())}, got {given!r}")
    if not isinstance(record.get("name", ""), str):
        raise InputError(f"{where}: field 'name' must be a string, got {type(record['name']).__name__}")
    if "program" in record:
        if not isinstance(record["program"], str):
            raise InputError(f"{where}: field 'program' must be a string")
        _check_text(record, "program", where)
        return record["program"], language, 0
    missing = [k for k in ("prompt", "completion", "tests") if not isinstance(record.get(k), str)]
    if missing:
        raise InputError(
            f"{where}: give 'program', or 'prompt', 'completion' and 'tests' (missing {', '.join(missing)})"
        )
    for field in ("prompt", "completion", "tests"):
        _check_text(record, field, where)
    head = record["prompt"] + record["completion"] + "\n"  # MultiPL-E's composition: head + tests
    return head + record["tests"], language, head.count("\n") + 1


def _check_text(record: dict[str, Any], field: str, where: str) -> None:
    """A program field must be valid Unicode text (no lone surrogates: it could not be written as UTF-8)."""
    try:
        record[field].encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{where}: field {field!r} is not valid Unicode text ({exc.reason} at {exc.start})") from None


def execute_records(
    records: Iterable[dict[str, Any]],
    limits: Limits = Limits(),
    *,
    workers: int | None = None,
    insecure: bool | None = None,
    store: Any = None,
    progress: Callable[[int, int], None] | None = None,
    where: Callable[[int], str] = lambda i: f"record {i + 1}",
) -> list[dict[str, Any]]:
    """Execute records; identical programs run once; with a store, stored results are reused (this function only
    reads it: whoever holds the store keeps new results, ``codequant.executions.store_executions``).

    A program's key includes where its tests start, so a bare ``program`` and the same text in
    prompt/completion form never share a verdict.

    A record's own ``timeout_s`` (a calibrated limit) replaces the limits' timeout for it, and enters its key.
    A SandboxError (the executor's fault) is run again, up to ``infrastructure.RETRIES`` times.

    Output (same order): each input record plus status, passed, exit_code, stdout, stderr, duration_s, limits,
    infrastructure_retries (when a SandboxError was run again), execution_key. ``iter_execute_records`` gives them as
    they finish instead.
    """
    records = list(records)
    results: list[dict[str, Any] | None] = [None] * len(records)
    for index, result in iter_execute_records(
        records, limits, workers=workers, insecure=insecure, store=store, progress=progress, where=where
    ):
        results[index] = result
    return [r for r in results if r is not None]


def iter_execute_records(
    records: Sequence[dict[str, Any]],
    limits: Limits = Limits(),
    *,
    workers: int | None = None,
    insecure: bool | None = None,
    store: Any = None,
    progress: Callable[[int, int], None] | None = None,
    where: Callable[[int], str] = lambda i: f"record {i + 1}",
    stop: threading.Event | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``execute_records`` as (index, result) pairs in the order they finish (stored ones first); every record is
    checked (InputError) before anything runs. Once ``stop`` is set, no program starts and running ones end
    (``ExecutorPool.run_iter``): the pairs yielded until then are what finished."""
    programs = [program_of(record, where(i)) for i, record in enumerate(records)]
    record_limits = [limits_of(record, limits, where(i)) for i, record in enumerate(records)]
    keys = [
        execution_key(program, language, own.as_key(), tests_line)
        for (program, language, tests_line), own in zip(programs, record_limits, strict=True)
    ]
    unique = dict(zip(keys, programs, strict=True))  # identical programs under the same limits run once
    unique_limits = dict(zip(keys, record_limits, strict=True))
    indexes: dict[str, list[int]] = collections.defaultdict(list)
    for index, key in enumerate(keys):
        indexes[key].append(index)
    known: dict[str, dict[str, Any]] = {}
    if store is not None:
        from codequant.executions import stored_executions  # the store's library loads only when one is given

        known = stored_executions(store, unique)
    done, total = 0, len(records)

    for key, result in known.items():
        for index in indexes.pop(key):
            yield index, {**records[index], **result, "limits": unique_limits[key].as_key(), "execution_key": key}
            done += 1
    if progress:
        progress(done, total)
    todo = list(indexes)
    pool = shared_pool(workers, insecure=insecure)
    for position, verdict in pool.run_iter([unique[key] for key in todo], [unique_limits[key] for key in todo], stop):
        key = todo[position]
        verdict, retries = retry_infrastructure(pool, unique[key], unique_limits[key], verdict, stop)
        result = {
            "status": str(verdict.status),
            "passed": verdict.passed,
            "exit_code": verdict.exit_code,
            "stdout": verdict.stdout,
            "stderr": verdict.stderr,
            "duration_s": round(verdict.duration_s, 4),
            "limits": unique_limits[key].as_key(),
            **({"infrastructure_retries": retries} if retries else {}),
        }
        for index in indexes.pop(key):
            yield index, {**records[index], **result, "execution_key": key}
            done += 1
        if progress:
            progress(done, total)


def execute_batch(
    request: ExecuteRequest,
    *,
    workers: int | None = None,
    store: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExecuteResult:
    """The execute stage: run a chunk of completions against their tests (with a store, stored results are reused;
    the orchestrator stores the outcomes, in both run modes); outcomes carry each completion's key and its execution
    key."""
    records = [item.model_dump() for item in request.items]
    limits = Limits.from_dict(request.limits)
    results = execute_records(records, limits, workers=workers, store=store, progress=progress)
    fields = ExecutionOutcome.model_fields
    outcomes = [ExecutionOutcome(**{k: v for k, v in r.items() if k in fields}) for r in results]
    commands = tuple(command for language in runner_languages() for command in runner_class(language).commands)
    provenance = flat_provenance(shared_pool(workers).sandbox.layers, limits)
    environment = {**describe(("codequant-executor",), commands=commands), **provenance}
    return ExecuteResult(outcomes=outcomes, environment=environment)
