"""The short pass@k tables printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from codequant.keys import stable_hash
from codequant.passk import mean_pass_at_k
from codequant.store import Store
from codequant_orchestrator.plan import Plan
from codequant_orchestrator.records import result_records

#: The k shown, each where the study samples at least k completions per problem.
KS = (1, 10, 100)


def table_digest(rows: list[list[str]]) -> str:
    """First 16 hex digits of the SHA-256 of the printed tables' cells (a row: k, model, variant, the cells in
    benchmark order), as canonical JSON: two runs printed the same figures if and only if their digests agree."""
    return stable_hash(rows)[:16]


def print_summary(console: Console, plan: Plan, store: Store) -> None:
    """pass@k (unbiased estimator, mean over problems) per variant and benchmark for k = 1, 10, 100 where n >= k,
    the tables' digest (``table_digest``) and where the report is. A cell counts the problems with at least k
    stored results; a partial count is shown."""
    outcomes: dict[tuple[int, str], tuple[dict[str, list[bool]], int]] = {}
    for index, variant in enumerate(plan.variants):
        for benchmark in plan.benchmarks:
            records = result_records(store, plan, variant, benchmark)
            per_problem: dict[str, list[bool]] = {}
            for record in records:
                per_problem.setdefault(record["name"], []).append(record["passed"])
            outcomes[index, benchmark] = per_problem, len(records)
    printed: list[list[str]] = []
    for k in (k for k in KS if k <= plan.study.sampling.n):
        table = Table("model", "variant", *plan.benchmarks, title=f"pass@{k}")
        for index, variant in enumerate(plan.variants):
            cells = []
            for benchmark in plan.benchmarks:
                per_problem, count = outcomes[index, benchmark]
                counts = [(len(v), sum(v)) for v in per_problem.values() if len(v) >= k]
                if not counts:
                    cells.append("–")
                    continue
                expected = len(plan.benchmarks[benchmark].problems) * plan.study.sampling.n
                partial = "" if count == expected else f" ({count}/{expected})"
                cells.append(f"{100 * mean_pass_at_k(counts, k):.1f}{partial}")
            table.add_row(variant.model.name, variant.variant.name, *cells)
            printed.append([str(k), variant.model.name, variant.variant.name, *cells])
        console.print(table)
    console.print(f"table digest: {table_digest(printed)}", markup=False)
    report = plan.study.out_dir / "report"
    if report.is_dir():
        console.print(f"report: {report}/")
