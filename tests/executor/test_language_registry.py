"""Adding a language is its description, its runner and its harness file: a toy language (bash) added from this
test alone loads as a benchmark, is laid out by its description's test layout, runs through the executor's API with
the harness's proof, and is gone again when unregistered; an unknown language is an error, never another language's
runner."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from codequant.benchmarks.convert import from_mceval
from codequant.benchmarks.registry import BenchmarkInfo
from codequant.benchmarks.user import load_user_benchmark
from codequant.errors import InputError
from codequant.languages import Language, get_language, register_language, unregister_language
from codequant.limits import Limits
from codequant_executor.api import (
    ExecutorPool,
    Runner,
    RunnerSetup,
    UnknownLanguage,
    execute_records,
    program_of,
    runner_class,
    runner_languages,
)
from codequant_executor.runner import unregister_runner
from codequant_executor.sandbox import PROOF_FD, Outcome
from codequant_executor.status import Status
from tests.executor.conftest import FAST

HARNESS = Path(__file__).resolve().parent / "toy_language"
PROMPT = "add() {\n"
TEST = '[ "$(add 2 3)" = 5 ] || { echo "add 2 3 != 5" >&2; exit 1; }\n'
TESTS = "}\n" + TEST  # the toy's tests close the function the completion is written in, as Java's and C++'s do


def define_toy_runner() -> type[Runner]:
    """The toy language's runner: defining the class registers it."""

    class ToyRunner(Runner):
        """bash runs the program through ``toy_language/run_toysh.sh``; exit status 1 is a failed test."""

        language = "toysh"
        commands = ("bash",)

        def __init__(self, setup: RunnerSetup) -> None:
            super().__init__(setup, setup.sandbox.mounts([HARNESS]))
            self.harness = f"{self.mounts[0].inside}/run_toysh.sh"

        def execute(self, program: str, limits: Limits, slot: int, tests_line: int, secret: bytes) -> Outcome:
            with self.scratch(program) as (workdir, source):
                argv = ["/usr/bin/bash", self.harness, source, str(tests_line), PROOF_FD]
                return self.sandboxed(argv, workdir, limits, slot, secret)

        def classify(self, outcome: Outcome) -> Status:
            return Status.FAILURE if outcome.exit_code == 1 else Status.EXCEPTION

    return ToyRunner


@pytest.fixture
def toy() -> Iterator[type[Runner]]:
    register_language(
        Language(name="toysh", label="Toy shell", suffix=".sh", multiple_name="tsh", tests_close_block=True)
    )
    runner = define_toy_runner()
    yield runner
    unregister_runner(runner)
    unregister_language("toysh")


def test_a_toy_language_added_from_test_code_runs_through_the_api(toy: type[Runner], tmp_path: Path) -> None:
    rows = [
        {"name": name, "language": "tsh", "prompt": PROMPT, "tests": TESTS, "stop_tokens": ["\n}"]}
        for name in ("add_right", "add_wrong", "add_exits_early")
    ]
    source = tmp_path / "toy.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    problems, _, _ = load_user_benchmark("toy", source)
    assert {p.language for p in problems} == {"toysh"}  # MultiPL-E's name of the language, made ours
    completions = ["  echo $(($1 + $2))", "  echo 4", "  :\n}\nexit 0\nadd() {\n  :"]
    records = [
        {**problem.to_record(), "completion": completion}
        for problem, completion in zip(problems, completions, strict=True)
    ]
    assert "toysh" in runner_languages() and runner_class("tsh") is toy
    results = execute_records(records, FAST, workers=1)
    assert [r["status"] for r in results] == ["OK", "Failure", "Exception"], results
    assert "add 2 3 != 5" in results[1]["stderr"]
    assert "exited before its tests completed" in results[2]["stderr"]  # `exit 0` before the tests: no proof


def test_the_toy_language_s_test_layout_shapes_its_mceval_problems(toy: type[Runner]) -> None:
    info = BenchmarkInfo("mceval-toysh", "McEval", "toysh", "mceval", "Toysh", 1, "test data")
    row = {
        "task_id": "Toysh/1",
        "prompt": "add()",
        "entry_point": "add",
        "canonical_solution": "{\n  echo $(($1 + $2))\n}",
        "test": TEST.rstrip("\n"),
    }
    problem = from_mceval(row, info, "toy:1")  # the tests close the function: the prompt ends after its "{"
    assert (problem.prompt, problem.tests, problem.stop_tokens) == (PROMPT, TESTS, ["\n}\n"])
    assert problem.canonical_solution == "  echo $(($1 + $2))\n"
    right = {**problem.to_record(), "completion": problem.canonical_solution}
    wrong = {**right, "completion": "  echo 4\n"}
    assert [r["status"] for r in execute_records([right, wrong], FAST, workers=1)] == ["OK", "Failure"]
    register_language(dataclasses.replace(get_language("toysh"), tests_close_block=False))
    whole = from_mceval(row, info, "toy:1")  # the tests follow a whole completion: the prompt is left as it is
    assert (whole.prompt, whole.tests, whole.canonical_solution) == ("add()\n", "\n" + TEST, row["canonical_solution"])


def test_an_unknown_language_is_an_error_never_a_fallback(toy: type[Runner]) -> None:
    pool = ExecutorPool(workers=1, insecure=True)
    try:
        assert pool.run_one('echo "$((1 + 1))"\n', "toysh", FAST).stdout == "2\n"
        unregister_runner(toy)
        unregister_language("toysh")
        fresh = ExecutorPool(workers=1, insecure=True)
        try:
            with pytest.raises(UnknownLanguage, match="no runner for language 'toysh'"):
                fresh.run_one("echo 1\n", "toysh", FAST)
        finally:
            fresh.close()
        with pytest.raises(
            UnknownLanguage, match="no runner for language 'ruby'; known: python, java, cpp, javascript"
        ):
            pool.run_one("puts 1\n", "ruby", FAST)
        with pytest.raises(InputError, match=r"record 1: field .language. must be one of .*, got .toysh."):
            program_of({"language": "toysh", "program": "echo 1\n"}, "record 1")
    finally:
        pool.close()
    with pytest.raises(KeyError, match="unknown language 'toysh'"):
        get_language("toysh")
