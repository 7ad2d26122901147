"""The reference self-check, calibrated per-problem limits, and verdicts the executor caused (issue 24), on the real
sandboxed executor."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from codequant.benchmarks import load_benchmark
from codequant.calibration import calibrated_timeout
from codequant.keys import execution_key
from codequant.limits import Limits
from codequant_executor.api import execute_records
from codequant_executor.self_check import self_check
from tests.cli import codequant

from .conftest import FAST

PROMPT = "def f(x):\n"
TESTS = "def check(candidate):\n    assert candidate(2) == 4\ncheck(f)\n"


def _user_benchmark(path: Path) -> Path:
    common = {"language": "python", "prompt": PROMPT, "tests": TESTS, "stop_tokens": ["\ndef"]}
    rows = [
        {"name": "good", **common, "canonical_solution": "    return 2 * x"},
        {"name": "bad", **common, "canonical_solution": "    return x"},
        {"name": "none", **common},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_self_check_cli_reports_failures_flips_missing_references_and_provenance(tmp_path: Path) -> None:
    bench = _user_benchmark(tmp_path / "mine.jsonl")
    out = tmp_path / "check.json"
    done = codequant("execute", "--self-check", bench, "--out", out, "--timeout", "5", timeout=300)
    assert done.returncode == 1, done.stderr  # a reference failed
    assert "excluded bad: reference Failure then Failure" in done.stderr
    report = json.loads(out.read_text())
    assert (report["checked"], report["failed"], report["flipped"], report["no_reference"]) == (2, 1, 0, 1)
    assert report["flip_rate"] == 0.0
    assert list(report["failures"]) == ["bad"] and "AssertionError" in report["failures"]["bad"]
    assert report["without_reference"] == ["none"]
    assert all(len(run["statuses"]) == 2 for run in report["runs"])
    provenance = report["provenance"]
    assert provenance["limits"]["timeout_s"] == 5.0
    assert provenance["executor_version"] != "unknown"
    assert "timeout" in provenance["sandbox_layers"]
    assert set(provenance["toolchains"]) >= {"python", "java"} and provenance["image_digest"] is None


def test_every_mceval_python_reference_passes_twice_and_multiple_has_none() -> None:
    check = self_check(load_benchmark("mceval-python"), FAST, workers=2)
    summary = check.summary()
    assert (summary["checked"], summary["failed"], summary["no_reference"]) == (50, 0, 0), check.failed
    assert all(0 < t < FAST.timeout_s for t in check.runtimes_s.values())
    unchecked = self_check(load_benchmark("multiple-humaneval-py", limit=5), FAST)
    assert unchecked.summary()["checked"] == 0 and len(unchecked.no_reference) == 5


def test_a_records_own_timeout_decides_its_verdict_and_enters_its_key() -> None:
    record = {
        "name": "slow",
        "language": "python",
        "prompt": "import time\n",
        "completion": "time.sleep(1.5)",
        "tests": "pass\n",
    }
    short, long = execute_records([{**record, "timeout_s": 0.8}, {**record, "timeout_s": 4.0}], FAST, workers=2)
    assert (short["status"], long["status"]) == ("Timeout", "OK")
    assert (short["limits"]["timeout_s"], long["limits"]["timeout_s"]) == (0.8, 4.0)
    assert short["execution_key"] != long["execution_key"]
    program = record["prompt"] + record["completion"] + "\n" + record["tests"]
    expected = execution_key(program, "python", Limits(4.0, FAST.memory_mb, FAST.max_output_bytes).as_key(), 3)
    assert long["execution_key"] == expected


def test_calibrated_timeout_is_the_larger_of_floor_and_factor_times_reference() -> None:
    assert calibrated_timeout(0.05, 4.0, 2.0, 10.0) == 2.0
    assert calibrated_timeout(1.5, 4.0, 2.0, 10.0) == 6.0
    assert calibrated_timeout(None, 4.0, 2.0, 10.0) == 10.0  # no measured reference: the study's timeout
    assert calibrated_timeout(1e9, 4.0, 2.0, 10.0) == 86400.0


class _FailingFirst:
    """The pool's Python runner, failing as the executor's infrastructure fails (disk full) on its first runs."""

    def __init__(self, runner: object, failures: int) -> None:
        self.runner, self.failures = runner, failures

    def run(self, *args: object) -> object:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return self.runner.run(*args)  # type: ignore[attr-defined]


def test_verdicts_the_executor_caused_are_retried_and_never_stored(tmp_path: Path) -> None:
    from codequant.executions import INFRASTRUCTURE_STATUSES, store_executions, stored_executions
    from codequant.store import Store
    from codequant_executor.api import close_shared_pool, shared_pool
    from codequant_executor.infrastructure import RETRIES
    from codequant_executor.status import INFRASTRUCTURE

    assert {str(s) for s in INFRASTRUCTURE} == INFRASTRUCTURE_STATUSES
    record = {"name": "p", "language": "python", "prompt": PROMPT, "completion": "    return 2 * x", "tests": TESTS}
    pool = shared_pool(1)
    real = pool._runners["python"]
    try:
        pool._runners["python"] = _FailingFirst(real, 1)  # type: ignore[assignment]
        (once,) = execute_records([record], FAST)
        assert (once["status"], once["infrastructure_retries"]) == ("OK", 1)
        pool._runners["python"] = _FailingFirst(real, RETRIES + 1)  # type: ignore[assignment]
        (lasting,) = execute_records([{**record, "timeout_s": 2.5}], FAST)
        assert (lasting["status"], lasting["infrastructure_retries"]) == ("SandboxError", RETRIES)
        assert "No space left on device" in lasting["stderr"]
    finally:
        pool._runners["python"] = real
        close_shared_pool()
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    assert store_executions(store, [once, lasting]) == 1
    assert set(stored_executions(store, [once["execution_key"], lasting["execution_key"]])) == {once["execution_key"]}


def test_bad_self_check_invocations_are_one_line_and_exit_2(tmp_path: Path) -> None:
    from tests.cli import codequant_in_process

    records = tmp_path / "in.jsonl"
    records.write_text("")
    out = tmp_path / "out.json"
    for args, expected in [
        (("--self-check", "nope", "--out", out), "unknown benchmark 'nope'"),
        ((records, "--self-check", "humaneval", "--out", out), "give IN.jsonl or --self-check BENCHMARK"),
        (("--out", out), "give IN.jsonl or --self-check BENCHMARK"),
        (("--self-check", "humaneval"), "--out: missing"),
    ]:
        done = codequant_in_process("execute", *args)
        assert done.returncode == 2 and expected in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_flipping_reference_is_excluded_or_counts_as_it_settles(tmp_path: Path) -> None:
    from codequant.benchmarks import BenchmarkSet
    from codequant.benchmarks.problem import Problem

    coin = Problem(
        name="coin",
        language="python",
        prompt="import os\n",
        tests="assert os.urandom(1)[0] < 192\n",  # passes three runs in four
        stop_tokens=[],
        benchmark="toy",
        canonical_solution="",
    )
    # Distinct programs (a comment each): identical programs would run once per call.
    problems = [dataclasses.replace(coin, name=f"coin{i}", canonical_solution=f"# {i}") for i in range(16)]
    strict = self_check(BenchmarkSet("toy", problems, "test"), FAST, workers=2)
    settled = self_check(BenchmarkSet("toy", problems, "test"), FAST, workers=2, rerun=True, max_runs=6)
    for run in strict.runs:  # two runs each; any failure leaves the problem out
        assert len(run.statuses) == 2 and run.passed == (run.statuses == ("OK", "OK"))
    assert strict.failed  # P(all 16 pass twice) = (9/16)**16 < 1e-3
    for run in settled.runs:
        assert 2 <= len(run.statuses) <= 6
        if len(run.statuses) < 6:  # stopped because the last two runs agreed
            assert run.statuses[-1] == run.statuses[-2] or {run.statuses[-1], run.statuses[-2]} <= {"OK"}
        assert run.passed == (run.statuses[-2:] == ("OK", "OK"))
    assert set(settled.runtimes_s) == {run.name for run in settled.runs if run.passed}
