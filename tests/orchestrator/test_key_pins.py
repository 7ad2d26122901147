"""The orchestrator's bookkeeping keys, pinned: a job key finds a job (and its Celery task) booked by an earlier run
of the same study, so a restarted runner re-attaches instead of sending the work again. A change to a literal here
must be deliberate and come with a migration note (docs/architecture.md, "Keys")."""

from __future__ import annotations

from pathlib import Path

from codequant.payloads import ExecuteRequest, ExecutionItem
from codequant.study import parse_study
from codequant_orchestrator.plan import plan_study
from codequant_orchestrator.stages import execute_chunk_suffix

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_study_job_keys_are_pinned() -> None:
    plan = plan_study(parse_study((REPO / "examples" / "demo.yaml").read_text()))
    fp32, rtn = plan.variants[0], plan.variants[-1]
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert [plan.job_key("report"), plan.job_key("quantize", rtn), plan.job_key("execute", fp32, "mceval-java")] == [
        "demo:report",
        "demo:quantize:426c1a29af574ad98a4c25a3e0a3f28e",
        "demo:execute:363b08c0c7d9f1febebbadcf6d51bd67:mceval-java",
    ]


def test_an_execute_chunk_is_named_by_its_completions_in_any_order() -> None:
    def chunk(keys: list[str]) -> ExecuteRequest:
        items = [
            ExecutionItem(name="p", language="python", prompt="", completion="", tests="", completion_key=key)
            for key in keys
        ]
        return ExecuteRequest(items=items, limits={"timeout_s": 10.0})

    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert execute_chunk_suffix(chunk(["c2", "c1", "c3"])) == "162e15055422ed71"
    assert execute_chunk_suffix(chunk(["c1", "c2", "c3"])) == execute_chunk_suffix(chunk(["c3", "c1", "c2"]))
