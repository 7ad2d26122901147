"""Store queries and record shapes shared by the embedded and distributed runners."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from codequant.results import completion_keys, sample_results
from codequant.store import Completion, Store
from codequant_orchestrator.plan import Plan, VariantPlan


def wanted_completion_keys(plan: Plan, variant: VariantPlan, benchmark: str) -> dict[tuple[str, int], str]:
    """The completion key of every (problem, sample) the study needs for one variant and benchmark."""
    problems = (p.name for p in plan.benchmarks[benchmark].problems)
    return completion_keys(plan.study, variant.key, benchmark, problems)


def unexecuted(store: Store, keys: Iterable[str]) -> list[Completion]:
    """Stored completions among ``keys`` that have no execution linked yet."""
    keys = list(keys)
    found: list[Completion] = []
    with store.session() as session:
        for start in range(0, len(keys), 500):
            found.extend(
                session.scalars(
                    select(Completion).where(
                        Completion.key.in_(keys[start : start + 500]), Completion.execution_key.is_(None)
                    )
                )
            )
    return sorted(found, key=lambda c: (c.problem, c.sample))


def result_records(store: Store, plan: Plan, variant: VariantPlan, benchmark: str) -> list[dict[str, Any]]:
    """Executed samples of one variant on one benchmark, in the reporter's input format. Instruct-mode samples also
    carry ``prompt_mode`` and ``raw_completion`` (the whole chat answer their ``completion`` was extracted from)."""
    language = plan.benchmarks[benchmark].problems[0].language if plan.benchmarks[benchmark].problems else ""
    results = sample_results(store, wanted_completion_keys(plan, variant, benchmark))
    return [
        {
            "name": name,
            "sample": sample,
            "passed": result["passed"],
            "status": result["status"],
            "benchmark": benchmark,
            "language": language,
            "model": variant.model.name,
            "variant": variant.variant.name,
            "completion": result["completion"],
            "finish_reason": result["finish_reason"],
            **({"prompt_mode": "instruct", "raw_completion": result["answer"]} if result["answer"] is not None else {}),
        }
        for (name, sample), result in sorted(results.items())
        if result["status"] is not None
    ]
