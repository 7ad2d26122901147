"""One writer of the executions table, the same in both run modes.

The executor only reads the store (to reuse a stored verdict); the orchestrator's ``record_executed`` stores what
comes back — the stage function's result in process (embedded), or the `execute` Celery task's JSON (distributed:
the task's own function runs here on the JSON payload a worker receives, as a worker runs it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from codequant.payloads import ExecuteRequest, ExecuteResult
from codequant.store import Completion, Execution, Store
from codequant.study import parse_study
from codequant_executor.api import execute_batch
from codequant_executor.tasks import execute_task
from codequant_orchestrator import bookkeeping, stages
from codequant_orchestrator.plan import Plan, plan_study
from codequant_orchestrator.records import unexecuted, wanted_completion_keys

SPEC = """\
name: one-writer
output_dir: {out}
models:
  - name: m
    hub_id: org/m
    variants:
      - {{name: base, method: baseline}}
benchmarks:
  - {{name: humaneval, problems: [HumanEval_0_has_close_elements, HumanEval_2_truncate_number]}}
sampling: {{n: 3}}
"""
#: (problem, sample) -> completion: passes, fails, and the same program twice (one execution for both).
COMPLETIONS = {
    ("HumanEval_2_truncate_number", 0): "    return number % 1.0\n",
    ("HumanEval_2_truncate_number", 1): "    return 0\n",
    ("HumanEval_2_truncate_number", 2): "    return number % 1.0\n",
    ("HumanEval_0_has_close_elements", 0): "    return False\n",
    ("HumanEval_0_has_close_elements", 1): "    raise ValueError('no')\n",
    ("HumanEval_0_has_close_elements", 2): (
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1 :])\n"
    ),
}


def stored_study(tmp_path: Path, name: str) -> tuple[Plan, Store]:
    plan = plan_study(parse_study(SPEC.format(out=tmp_path / name)))
    store = Store(f"sqlite:///{tmp_path / f'{name}.db'}")
    bookkeeping.register_study(store, plan, SPEC)
    variant = plan.variants[0]
    keys = wanted_completion_keys(plan, variant, "humaneval")
    store.insert_ignore(
        Completion,
        [
            {"key": keys[at], "variant_key": variant.key, "benchmark": "humaneval", "problem": at[0],
             "sample": at[1], "completion": text}
            for at, text in COMPLETIONS.items()
        ],
    )  # fmt: skip
    return plan, store


def requests(plan: Plan, store: Store) -> list[ExecuteRequest]:
    variant = plan.variants[0]
    todo = unexecuted(store, wanted_completion_keys(plan, variant, "humaneval").values())
    return list(stages.execute_requests(plan, variant, "humaneval", todo, chunk=4))


def count_inserts(store: Store) -> list[str]:
    """Every INSERT into the executions table this store's engine runs, from now on."""
    seen: list[str] = []

    def watch(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO EXECUTIONS"):
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", watch)
    return seen


def executions(store: Store) -> list[tuple]:
    """The executions table without what differs between two runs of the same program (duration, time)."""
    with store.session() as session:
        rows = session.scalars(select(Execution).order_by(Execution.key))
        return [(e.key, e.language, e.status, e.passed, e.exit_code, e.stdout, e.stderr) for e in rows]


def links(store: Store) -> dict[str, str | None]:
    with store.session() as session:
        return {c.key: c.execution_key for c in session.scalars(select(Completion))}


def test_embedded_and_distributed_runs_store_the_same_executions_through_one_writer(tmp_path: Path) -> None:
    plan, embedded = stored_study(tmp_path, "embedded")
    inserts = count_inserts(embedded)
    for request in requests(plan, embedded):
        written = len(inserts)
        result = execute_batch(request, workers=2, store=embedded)  # what the embedded runner calls
        assert len(inserts) == written  # the executor read the store and wrote nothing to it
        stages.record_executed(embedded, result)

    plan, distributed = stored_study(tmp_path, "distributed")
    distributed_inserts = count_inserts(distributed)
    for request in requests(plan, distributed):
        payload = json.loads(json.dumps(request.model_dump(mode="json")))  # what travels to the worker
        value = json.loads(json.dumps(execute_task(payload)))  # and back through the result backend
        stages.record_executed(distributed, ExecuteResult.model_validate(value))

    assert executions(embedded) == executions(distributed)
    assert len(executions(embedded)) == 5  # six completions, two of them the same program
    assert {e[2] for e in executions(embedded)} == {"OK", "Failure", "Exception"}
    assert links(embedded) == links(distributed) and None not in links(embedded).values()
    assert len(inserts) == len(distributed_inserts) == 2  # one per chunk, by record_executed alone
    with embedded.session() as session:
        passed = session.scalar(
            select(func.count()).select_from(Completion).join(Execution, Execution.key == Completion.execution_key)
            .where(Execution.passed.is_(True))
        )  # fmt: skip
    assert passed == 3


def test_a_stored_verdict_is_reused_not_written_again(tmp_path: Path) -> None:
    plan, store = stored_study(tmp_path, "reuse")
    for request in requests(plan, store):
        stages.record_executed(store, execute_batch(request, workers=2, store=store))
    before = executions(store)
    with store.session() as session:  # forget the links: the runner would send the same programs again
        for completion in session.scalars(select(Completion)):
            completion.execution_key = None
    inserts = count_inserts(store)
    for request in requests(plan, store):
        result = execute_batch(request, workers=2, store=store)
        assert {o.execution_key for o in result.outcomes} <= {e[0] for e in before}
        stages.record_executed(store, result)
    assert executions(store) == before and None not in links(store).values()
    assert len(inserts) == 2  # record_executed's idempotent inserts, adding nothing
