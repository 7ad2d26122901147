"""The executions table's one reader and one writer.

An execution is keyed by ``codequant.keys.execution_key`` (program, language, limits, where the tests start), so
identical programs share one row. Whoever runs a study — the embedded runner or the distributed one — stores
executions through ``store_executions`` once, when their results come back (``codequant_orchestrator.stages``);
executors only read (``stored_executions``) to reuse a verdict, and `codequant execute --store` keeps its results
through the same writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from codequant.store import Execution, Store

#: What an execution records about a run, besides its key and language.
RESULT_FIELDS = ("status", "passed", "exit_code", "stdout", "stderr", "duration_s")
#: Statuses the executor caused, not the program (``codequant_executor.status.INFRASTRUCTURE``): never stored, so a
#: re-run runs the program again; never a verdict on a completion.
INFRASTRUCTURE_STATUSES = frozenset({"SandboxError"})
_CHUNK = 500


def stored_executions(store: Store, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored result (``RESULT_FIELDS``) of each execution key in ``keys`` that has one."""
    keys = list(keys)
    found: dict[str, dict[str, Any]] = {}
    with store.session() as session:
        for start in range(0, len(keys), _CHUNK):
            for row in session.scalars(select(Execution).where(Execution.key.in_(keys[start : start + _CHUNK]))):
                found[row.key] = {name: getattr(row, name) for name in RESULT_FIELDS}
    return found


def store_executions(store: Store, results: Iterable[Mapping[str, Any]]) -> int:
    """Store executions whose key is new (a stored one is kept: same key, same program and limits); each result has
    ``execution_key``, ``language`` (ours, not MultiPL-E's short names) and ``RESULT_FIELDS``; results with an
    ``INFRASTRUCTURE_STATUSES`` status are left out. Returns rows added."""
    rows = {
        r["execution_key"]: {"key": r["execution_key"], "language": r["language"], **{f: r[f] for f in RESULT_FIELDS}}
        for r in results
        if r["status"] not in INFRASTRUCTURE_STATUSES
    }
    return store.insert_ignore(Execution, list(rows.values()))
