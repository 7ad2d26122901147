"""The report's "Verdict checks" sections: the reference self-check, the calibrated limits, the flake rate and the
verdicts' provenance, read from the store's ``verifications`` (written by the orchestrator, docs/executor.md) by
``codequant.verdict_checks``; and the problems these checks leave out of every comparison."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from codequant.benchmarks import BenchmarkSet
from codequant.verdict_checks import VerdictChecks


def apply_exclusions(benchmarks: dict[str, BenchmarkSet], checks: VerdictChecks) -> None:
    """Move the problems the checks leave out from each benchmark's problems to its ``excluded`` (with the reason)."""
    for name, reasons in checks.excluded().items():
        bench = benchmarks.get(name)
        if bench is None:
            continue
        kept = [p for p in bench.problems if p.name not in reasons]
        for problem in bench.problems:
            if problem.name in reasons:
                bench.excluded[problem.name] = reasons[problem.name]
        bench.problems = kept


def verdict_check_sections(checks: VerdictChecks) -> list[tuple[str, list[str]]]:
    """(heading, lines) sections for the report; a line saying the checks did not run when none are stored."""
    if not checks.self_checks and not checks.flakes:
        return [("Verdict checks", ["No reference self-check or flake measurement is stored for this study."])]
    return [
        ("Reference self-check", _self_check_lines(checks)),
        ("Calibrated time limits", _limit_lines(checks)),
        ("Flakes", _flake_lines(checks)),
        ("Verdict provenance", _provenance_lines(checks)),
    ]


def _self_check_lines(checks: VerdictChecks) -> list[str]:
    lines = [
        "Every problem's reference solution ran twice in the executor, under the study's limits, before the first "
        "execution; a problem whose reference did not pass both runs is excluded from every comparison."
    ]
    for name, c in checks.self_checks.items():
        line = f"{name} ({c['language']}): {c['checked']} checked, {c['failed']} failed, {c['flipped']} flipped"
        if c["no_reference"]:
            line += f"; {c['no_reference']} without a reference solution (not checked: the benchmark ships none)"
        lines.append(line + ".")
        lines += [f"{name}: excluded {problem} — {reason}" for problem, reason in c["failures"].items()]
    return lines


def _limit_lines(checks: VerdictChecks) -> list[str]:
    lines = []
    for name, c in checks.self_checks.items():
        calibration, timeouts = c.get("calibration"), c.get("timeouts")
        if not calibration or not timeouts:
            lines.append(f"{name}: the study's timeout for every problem (no calibration).")
            continue
        unmeasured = {p for p in timeouts if p in c["without_reference"] or p in c["failures"]}
        values = sorted(v for problem, v in timeouts.items() if problem not in unmeasured)
        if not values:
            lines.append(f"{name}: no measured reference: the study's timeout for all {len(timeouts)} problems.")
            continue
        at_floor = sum(v == calibration["floor_s"] for v in values)
        line = (
            f"{name}: max({calibration['floor_s']:g} s, {calibration['factor']:g} × reference runtime); "
            f"min {values[0]:g} s, median {statistics.median(values):g} s, max {values[-1]:g} s; "
            f"{at_floor} of {len(values)} problems at the floor"
        )
        lines.append(
            line
            + (f"; {len(unmeasured)} without a measured reference keep the study's timeout." if unmeasured else ".")
        )
    return lines or ["No calibration."]


def _flake_lines(checks: VerdictChecks) -> list[str]:
    """Flip rates per benchmark and language: each variant's re-run failures, and the references' second run."""
    lines = [
        "A seeded sample of each variant's failed samples ran a second time outside the store (the references: "
        "all of them); a sample flips when one run passes and another does not."
    ]
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for flake in checks.flakes:
        totals[(flake["benchmark"], flake["language"])][0] += flake["sampled"]
        totals[(flake["benchmark"], flake["language"])][1] += flake["flipped"]
    for (bench, language), (sampled, flipped) in sorted(totals.items()):
        rate = f"{flipped / sampled:.1%}" if sampled else "n/a"
        lines.append(f"{bench} ({language}): variants' failures {flipped} of {sampled} re-runs flipped ({rate}).")
    for name, c in checks.self_checks.items():
        rate = f"{c['flip_rate']:.1%}" if c["flip_rate"] is not None else "n/a"
        lines.append(f"{name} ({c['language']}): references {c['flipped']} of {c['checked']} flipped ({rate}).")
    for flake in checks.flakes:
        if flake["flipped_problems"]:
            lines.append(
                f"{flake['variant']} on {flake['benchmark']}: flipped {', '.join(flake['flipped_problems'])} "
                f"(policy {flake['policy']})"
            )
    return lines


def _provenance_lines(checks: VerdictChecks) -> list[str]:
    seen: list[dict[str, Any]] = []
    for record in [*checks.self_checks.values(), *checks.flakes]:
        provenance = {k: v for k, v in record.get("provenance", {}).items() if k != "limits"}
        if provenance and provenance not in seen:
            seen.append(provenance)
    lines = []
    for p in seen:
        tools = ", ".join(f"{k} {v}" for k, v in p["toolchains"].items())
        lines.append(
            f"codequant-executor {p['executor_version']}; sandbox layers: {', '.join(p['sandbox_layers'])}; "
            f"toolchains: {tools}; image digest: {p['image_digest'] or 'none (not in a container)'}."
        )
    limits = {str(r["provenance"]["limits"]) for r in checks.self_checks.values() if "provenance" in r}
    lines += [f"Limits of the checks: {limit}" for limit in sorted(limits)]
    return lines
