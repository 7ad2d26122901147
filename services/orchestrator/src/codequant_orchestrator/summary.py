"""The short pass@k tables printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from codequant.keys import stable_hash
from codequant.passk import mean_pass_at_k
from codequant.store import Store
from codequant.verdict_checks import load_verdict_checks
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
    stored results; a partial count is shown. Problems the verdict checks leave out (a reference that failed the
    self-check, a verdict that flipped: ``codequant.verdict_checks``) are left out here too, as in the report, and
    a line per benchmark says how many."""
    excluded = load_verdict_checks(store, plan.study.name).excluded()
    outcomes: dict[tuple[int, str], tuple[dict[str, list[bool]], int]] = {}
    for index, variant in enumerate(plan.variants):
        for benchmark in plan.benchmarks:
            left_out = excluded.get(benchmark, {})
            records = [r for r in result_records(store, plan, variant, benchmark) if r["name"] not in left_out]
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
                kept = [p for p in plan.benchmarks[benchmark].problems if p.name not in excluded.get(benchmark, {})]
                expected = len(kept) * plan.study.sampling.n
                partial = "" if count == expected else f" ({count}/{expected})"
                cells.append(f"{100 * mean_pass_at_k(counts, k):.1f}{partial}")
            table.add_row(variant.model.name, variant.variant.name, *cells)
            printed.append([str(k), variant.model.name, variant.variant.name, *cells])
        console.print(table)
    for line in _left_out(plan, excluded):
        console.print(line, markup=False)
    console.print(f"table digest: {table_digest(printed)}", markup=False)
    report = plan.study.out_dir / "report"
    if report.is_dir():
        console.print(f"report: {report}/")


def _left_out(plan: Plan, excluded: dict[str, dict[str, str]]) -> list[str]:
    """'BENCHMARK: N of M problems left out, as in the report (why)' for each benchmark with excluded problems."""
    lines = []
    for benchmark, bench in plan.benchmarks.items():
        reasons = excluded.get(benchmark, {})
        names = [p.name for p in bench.problems if p.name in reasons]
        if not names:
            continue
        references = sum(reasons[name].startswith("self-check:") for name in names)
        why = [f"{references} failed the reference self-check"] if references else []
        why += [f"{len(names) - references} with a flipping verdict"] if len(names) > references else []
        lines.append(
            f"{benchmark}: {len(names)} of {len(bench.problems)} problems left out, as in the report ({', '.join(why)})"
        )
    return lines
