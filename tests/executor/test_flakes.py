"""Flakes measured (issue 24): a seeded sample of failures runs again on the real executor; flips are counted."""

from __future__ import annotations

from codequant.reruns import Rerun, sample_failures
from codequant_executor.flakes import FlakeCheck, measure_flakes

from .conftest import FAST

#: Passes on about half its runs (the sandbox gives each run fresh randomness); each sample gets its own comment as
#: its completion, since identical programs run once per call.
COIN = {"language": "python", "prompt": "import os\n", "completion": "", "tests": "assert os.urandom(1)[0] < 128\n"}
STEADY = {"language": "python", "prompt": "", "completion": "", "tests": "assert 1 == 2\n"}


def test_the_sample_is_seeded_sized_and_only_failures() -> None:
    results = [
        {"name": f"p{i}", "sample": s, "status": "OK" if i % 3 == 0 else "Failure"} for i in range(30) for s in (0, 1)
    ]
    failed = [r for r in results if r["status"] != "OK"]
    first = sample_failures(results, 0.25, seed=7)
    assert first == sample_failures(results, 0.25, seed=7) and first != sample_failures(results, 0.25, seed=8)
    assert len(first) == round(0.25 * len(failed)) and all(r["status"] != "OK" for r in first)
    assert len(sample_failures(results[2:4], 0.01, seed=0)) == 1  # one failure at least, when there is one
    assert sample_failures(results, 0.0, seed=0) == []


def test_a_coin_flip_program_flips_and_a_steady_failure_never_does() -> None:
    sampled = [{"name": "steady", "sample": 0, "status": "Failure", **STEADY}] + [
        {"name": "coin", "sample": s, "status": "Failure", **COIN, "completion": f"# {s}"} for s in range(12)
    ]
    check = measure_flakes(FlakeCheck("toy", "python", "v"), sampled, FAST, max_runs=2, workers=2)
    steady = [r for r in check.reruns if r.name == "steady"]
    assert steady[0].statuses == ("Failure", "Failure") and not steady[0].flipped
    coins = [r for r in check.reruns if r.name == "coin"]
    assert all(len(r.statuses) == 2 for r in coins)
    assert any(r.flipped for r in coins)  # P(no flip in 12 fair coins) = 2**-12
    assert check.flipped == ["coin"]
    summary = check.summary()
    assert summary["sampled"] == 13 and summary["flip_rate"] == sum(r.flipped for r in check.reruns) / 13


def test_rerun_runs_flipped_samples_until_two_runs_agree() -> None:
    sampled = [{"name": "coin", "sample": s, "status": "Failure", **COIN, "completion": f"# {s}"} for s in range(8)]
    check = measure_flakes(FlakeCheck("toy", "python", "v"), sampled, FAST, max_runs=6, workers=2)
    for rerun in check.reruns:
        assert 2 <= len(rerun.statuses) <= 6
        if len(rerun.statuses) < 6:
            assert rerun.settled  # it stopped because the last two runs agreed
        if len(rerun.statuses) > 2:
            assert rerun.flipped
    assert Rerun("x", 0, ("Failure", "OK", "OK")).settled and not Rerun("x", 0, ("Failure", "OK")).settled
