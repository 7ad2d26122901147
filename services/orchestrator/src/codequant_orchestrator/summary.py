"""The short pass@1 table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from codequant.store import Store
from codequant_orchestrator.plan import Plan
from codequant_orchestrator.records import result_records


def print_summary(console: Console, plan: Plan, store: Store) -> None:
    """pass@1 (mean over problems of passed/n) per variant and benchmark, and where the report is."""
    table = Table("model", "variant", *plan.benchmarks, title="pass@1")
    for variant in plan.variants:
        cells = []
        for benchmark in plan.benchmarks:
            records = result_records(store, plan, variant, benchmark)
            per_problem: dict[str, list[bool]] = {}
            for record in records:
                per_problem.setdefault(record["name"], []).append(record["passed"])
            expected = len(plan.benchmarks[benchmark].problems) * plan.study.sampling.n
            if not per_problem:
                cells.append("–")
                continue
            score = sum(sum(v) / len(v) for v in per_problem.values()) / len(per_problem)
            partial = "" if len(records) == expected else f" ({len(records)}/{expected})"
            cells.append(f"{100 * score:.1f}{partial}")
        table.add_row(variant.model.name, variant.variant.name, *cells)
    console.print(table)
    report = plan.study.out_dir / "report"
    if report.is_dir():
        console.print(f"report: {report}/")
