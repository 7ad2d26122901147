"""Planning a study and its bookkeeping in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from codequant.payloads import ExecuteResult, ExecutionOutcome
from codequant.store import Completion, Execution, Job, Store, StudyVariant, Variant
from codequant.study import parse_study
from codequant_orchestrator import bookkeeping
from codequant_orchestrator.cancellation import CANCELLING, CancelCheck, StudyCancelled
from codequant_orchestrator.plan import plan_study
from codequant_orchestrator.records import unexecuted, wanted_completion_keys
from codequant_orchestrator.stages import record_executed

SPEC = """\
name: plan-test
output_dir: {out}
models:
  - name: tiny
    builtin: {{kind: tiny-code, profile: test}}
    variants:
      - {{name: fp32, method: baseline}}
      - {{name: q2, method: aqlm, num_codebooks: 1, nbits_per_codebook: 8, in_group_size: 8,
          calibration: {{set: code, nsamples: 8, seqlen: 64}}}}
      - {{name: rtn2, method: rtn, bits: 2, group_size: 32}}
benchmarks:
  - {{name: mceval-java, limit: 3}}
  - {{name: humaneval, problems: [HumanEval_0_has_close_elements, HumanEval_2_truncate_number]}}
sampling: {{n: 4}}
"""


def make_plan(tmp_path: Path):
    spec = SPEC.format(out=tmp_path / "run")
    return plan_study(parse_study(spec)), spec


def test_plan_resolves_variants_benchmarks_and_quantization_needs(tmp_path: Path) -> None:
    plan, _ = make_plan(tmp_path)
    assert [v.label for v in plan.variants] == ["tiny/fp32", "tiny/q2", "tiny/rtn2"]
    assert [v.needs_quantization for v in plan.variants] == [False, True, True]
    assert len({v.key for v in plan.variants}) == 3
    assert {name: len(b.problems) for name, b in plan.benchmarks.items()} == {"mceval-java": 3, "humaneval": 2}
    keys = wanted_completion_keys(plan, plan.variants[0], "mceval-java")
    assert len(keys) == 12 and len(set(keys.values())) == 12
    assert keys == wanted_completion_keys(make_plan(tmp_path)[0], plan.variants[0], "mceval-java")


def test_register_is_idempotent_and_progress_is_derived_from_the_store(store_url: str, tmp_path: Path) -> None:
    plan, spec = make_plan(tmp_path)
    store = Store(store_url)
    bookkeeping.register_study(store, plan, spec)
    bookkeeping.register_study(store, plan, spec)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Variant)) == 3
        assert session.scalar(select(func.count()).select_from(StudyVariant)) == 3
        # per variant: quantize + 2 x (generate, execute); plus one report job
        assert session.scalar(select(func.count()).select_from(Job)) == 3 * 5 + 1
        # each job names its variant and benchmark (the report's time per variant reads them)
        located = {(j.stage, j.variant_key, j.benchmark) for j in session.scalars(select(Job))}
        assert ("report", None, None) in located and ("quantize", plan.variants[0].key, None) in located
        assert ("generate", plan.variants[2].key, "humaneval") in located and len(located) == 3 * 5 + 1

    variant = plan.variants[1]
    keys = wanted_completion_keys(plan, variant, "humaneval")
    rows = [
        {
            "key": key,
            "variant_key": variant.key,
            "benchmark": "humaneval",
            "problem": name,
            "sample": sample,
            "completion": "    return 0\n",
        }
        for (name, sample), key in keys.items()
    ]
    store.insert_ignore(Completion, rows[:5])
    todo = unexecuted(store, keys.values())
    assert len(todo) == 5
    record_executed(
        store,
        ExecuteResult(
            outcomes=[
                ExecutionOutcome(
                    completion_key=c.key,
                    execution_key=f"e{c.sample % 2}",
                    language="python",
                    status="Failure",
                    passed=False,
                    exit_code=1,
                    duration_s=0.01,
                )
                for c in todo[:3]
            ]
        ),
    )
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Execution)) == 2  # identical programs stored once
    progress = bookkeeping.stage_progress(store, plan)
    assert progress["generate"] == {"done": 5, "total": 3 * (12 + 8), "failed": 0}
    assert progress["execute"] == {"done": 3, "total": 3 * (12 + 8), "failed": 0}

    job = plan.job_key("quantize", variant)
    with pytest.raises(RuntimeError), bookkeeping.running_job(store, job):
        raise RuntimeError("out of memory")
    with bookkeeping.running_job(store, job):
        pass
    with store.session() as session:
        row = session.get(Job, job)
        assert (row.status, row.attempts, row.error) == ("done", 2, None)
        assert row.seconds >= 0 and row.finished_at is not None
    store.dispose()


def test_a_study_is_cancelled_through_its_row_and_the_job_it_stops_in_says_so(store_url: str, tmp_path: Path) -> None:
    plan, spec = make_plan(tmp_path)
    store = Store(store_url)
    bookkeeping.register_study(store, plan, spec)
    check = CancelCheck(store, "plan-test", every_s=0)
    check()  # pending: nothing happens
    assert bookkeeping.move_study(store, "plan-test", ("pending",), "running")
    assert not bookkeeping.move_study(store, "plan-test", ("pending",), "cancelled")  # it is running now
    assert bookkeeping.move_study(store, "plan-test", ("running",), CANCELLING)
    job = plan.job_key("report")
    with pytest.raises(StudyCancelled), bookkeeping.running_job(store, job):
        check()
    with store.session() as session:
        assert (session.get(Job, job).status, session.get(Job, job).error) == ("cancelled", None)
    store.dispose()
