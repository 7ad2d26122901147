"""The report's verdict-check sections (issue 24): stored self-checks and flake re-runs read from a real store,
the problems they exclude, and the flip rates, checked against a count made here by hand."""

from __future__ import annotations

from pathlib import Path

from codequant.benchmarks import load_benchmark
from codequant.store import Store, Study, Verification
from codequant.verdict_checks import load_verdict_checks
from codequant_reporter.verdict_checks import apply_exclusions, verdict_check_sections

PROVENANCE = {
    "executor_version": "0.1.0",
    "sandbox_layers": ["bubblewrap", "seccomp"],
    "toolchains": {"python": "3.11.9", "java": "openjdk 17"},
    "image_digest": None,
    "limits": {"timeout_s": 10.0, "memory_mb": 1024, "max_output_bytes": 64000},
}


def _self_check(failures: dict[str, str]) -> dict:
    return {
        "benchmark": "humaneval",
        "language": "python",
        "checked": 5,
        "failed": len(failures),
        "flipped": 1,
        "no_reference": 0,
        "flip_rate": 0.2,
        "failures": failures,
        "flips": [],
        "runs": [],
        "without_reference": ["d"],
        "provenance": PROVENANCE,
        "calibration": {"factor": 4.0, "floor_s": 3.0},
        "timeouts": {"a": 3.0, "b": 3.0, "c": 8.0, "d": 15.0},
    }


def _flakes(variant: str, reruns: list[tuple[str, tuple[str, ...]]], policy: str) -> dict:
    flipped = [r for r in reruns if len({s == "OK" for s in r[1]}) > 1]
    return {
        "benchmark": "humaneval",
        "language": "python",
        "variant": variant,
        "failures": 10,
        "sampled": len(reruns),
        "flipped": len(flipped),
        "flip_rate": len(flipped) / len(reruns),
        "flipped_problems": sorted({name for name, _ in flipped}),
        "reruns": [{"name": n, "sample": i, "statuses": list(s)} for i, (n, s) in enumerate(reruns)],
        "policy": policy,
        "provenance": PROVENANCE,
    }


def _store(tmp_path: Path, flakes: list[dict]) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.session() as session:
        session.add(Study(id="s", spec_yaml="", spec_hash=""))
    rows = [
        {
            "key": "sc",
            "study_id": "s",
            "kind": "self-check",
            "benchmark": "humaneval",
            "result": _self_check({"HumanEval_2_truncate_number": "reference Failure then Failure: AssertionError"}),
        }
    ]
    rows += [
        {
            "key": f"f{i}",
            "study_id": "s",
            "kind": "flakes",
            "benchmark": "humaneval",
            "variant_key": f"v{i}",
            "result": f,
        }
        for i, f in enumerate(flakes)
    ]
    store.insert_ignore(Verification, rows)
    return store


def test_failing_references_and_flipping_problems_leave_the_comparisons_with_their_reason(tmp_path: Path) -> None:
    flakes = [
        _flakes(
            "m/a",
            [
                ("HumanEval_0_has_close_elements", ("Failure", "OK")),
                ("HumanEval_1_separate_paren_groups", ("Timeout",) * 2),
            ],
            "exclude",
        ),
        _flakes(
            "m/b",
            [
                ("HumanEval_3_below_zero", ("Failure", "OK", "OK")),
                ("HumanEval_4_mean_absolute_deviation", ("Failure", "OK")),
            ],
            "rerun",
        ),
    ]
    checks = load_verdict_checks(_store(tmp_path, flakes), "s")
    bench = load_benchmark("humaneval", limit=6)
    benchmarks = {"humaneval": bench}
    apply_exclusions(benchmarks, checks)
    # exclude: every flipped problem; rerun: only those whose last two runs disagree (HumanEval_3 settled)
    assert set(bench.excluded) == {
        "HumanEval_2_truncate_number",
        "HumanEval_0_has_close_elements",
        "HumanEval_4_mean_absolute_deviation",
    }
    assert bench.excluded["HumanEval_2_truncate_number"].startswith("self-check: reference Failure")
    assert [p.name for p in bench.problems] == [
        "HumanEval_1_separate_paren_groups",
        "HumanEval_3_below_zero",
        "HumanEval_5_intersperse",
    ]
    assert not {p.name for p in bench.problems} & set(bench.excluded)


def test_the_sections_state_counts_limits_flip_rates_and_provenance(tmp_path: Path) -> None:
    reruns_a = [("p1", ("Failure", "OK")), ("p2", ("Failure", "Failure")), ("p3", ("Timeout", "Timeout"))]
    reruns_b = [("p1", ("Failure", "OK")), ("p4", ("Exception", "Exception"))]
    checks = load_verdict_checks(
        _store(tmp_path, [_flakes("m/a", reruns_a, "exclude"), _flakes("m/b", reruns_b, "exclude")]), "s"
    )
    sections = dict(verdict_check_sections(checks))
    assert list(sections) == ["Reference self-check", "Calibrated time limits", "Flakes", "Verdict provenance"]
    assert "humaneval (python): 5 checked, 1 failed, 1 flipped." in sections["Reference self-check"]
    assert sections["Calibrated time limits"] == [
        "humaneval: max(3 s, 4 × reference runtime); min 3 s, median 3 s, max 8 s; 2 of 3 problems at the floor; "
        "1 without a measured reference keep the study's timeout."
    ]
    # By hand: 2 flips (p1 in each variant) of 5 re-runs over both variants.
    assert "humaneval (python): variants' failures 2 of 5 re-runs flipped (40.0%)." in sections["Flakes"]
    assert "humaneval (python): references 1 of 5 flipped (20.0%)." in sections["Flakes"]
    (provenance,) = [line for line in sections["Verdict provenance"] if line.startswith("codequant-executor")]
    assert (
        "bubblewrap, seccomp" in provenance and "java openjdk 17" in provenance and "not in a container" in provenance
    )


def test_a_study_without_checks_says_so(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    assert verdict_check_sections(load_verdict_checks(store, "s"))[0][1][0].startswith("No reference self-check")
