"""Instruct mode without a model: the instruction, completion keys per prompt mode, and code extraction from chat
answers, run in the real sandbox against the shipped benchmarks' tests."""

from __future__ import annotations

import pytest

from codequant import instruct
from codequant.benchmarks import Problem, load_benchmark
from codequant.extraction import extract, fenced_blocks, function_name
from codequant.keys import completion_key
from codequant.study.spec import SamplingParams
from codequant_executor.api import execute_records

HUMANEVAL = load_benchmark("humaneval").by_name()
MCEVAL_JAVA = load_benchmark("mceval-java").by_name()
MULTIPLE_JAVA = load_benchmark("multiple-humaneval-java").by_name()


def run(problem: Problem, head: str) -> dict:
    """The verdict of ``head + "\\n" + tests``, composed and run exactly as a completion is (empty prompt)."""
    record = {"name": problem.name, "language": problem.language, "prompt": "", "completion": head}
    return execute_records([{**record, "tests": problem.tests}], workers=2)[0]


@pytest.mark.parametrize("benchmark", ["humaneval", "mceval-python", "mceval-java"])
def test_an_answer_that_continues_the_prefix_gives_the_reference_program(benchmark: str) -> None:
    """prefix + the canonical solution extracts to prompt + solution, for every shipped problem, less what runs at
    top level after the function (McEval Python/9's solution prints its results: the sanitizer drops that)."""
    problems = [p for p in load_benchmark(benchmark).problems if p.canonical_solution]
    assert len(problems) > 40
    trimmed = []
    for problem in problems:
        answer = instruct.response_prefix(problem) + problem.canonical_solution
        extracted = extract(answer, problem)
        assert extracted.found, problem.name
        reference, head = (problem.prompt + problem.canonical_solution).rstrip(), extracted.head.rstrip()
        if head != reference:
            assert reference.startswith(head) and "def " not in reference[len(head) :], problem.name
            trimmed.append(problem.source_id)
    assert trimmed == (["Python/9"] if benchmark == "mceval-python" else [])


def test_the_instruction_fences_the_prompt_and_the_prefix_repeats_it() -> None:
    problem = HUMANEVAL["HumanEval_0_has_close_elements"]
    chat = instruct.messages(problem)
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert f"```python\n{problem.prompt}```" in chat[0]["content"]
    assert chat[1]["content"] == problem.prompt
    assert [m["role"] for m in instruct.messages(problem, with_prefix=False)] == ["user"]


def test_fenced_blocks_put_the_language_first_and_read_an_unclosed_block_to_the_end() -> None:
    answer = "Plan:\n```\nnot code\n```\nCode:\n```python\ndef f():\n    return 1\n```\nUsage:\n```py\nf()\n"
    assert fenced_blocks(answer, "python") == ["def f():\n    return 1\n", "f()\n", "not code\n"]


def test_python_answer_keeps_imports_the_function_and_its_helpers_and_drops_tests() -> None:
    problem = HUMANEVAL["HumanEval_0_has_close_elements"]
    answer = (
        "Sure! Here is an implementation:\n\n```python\nimport math\nfrom typing import List\n\nTHRESHOLD_SCALE = 1\n\n"
        "def distance(a: float, b: float) -> float:\n    return math.fabs(a - b) * THRESHOLD_SCALE\n\n\n"
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return any(distance(a, b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n\n\n"
        "def unused():\n    raise SystemExit(0)\n\n\nprint(has_close_elements([1.0, 2.0], 0.5))\nassert False\n\n"
        "if __name__ == '__main__':\n    unused()\n```\n\nThe helper measures the distance."
    )
    extracted = extract(answer, problem)
    assert extracted.found
    assert (
        "def distance" in extracted.head and "THRESHOLD_SCALE = 1" in extracted.head and "import math" in extracted.head
    )
    assert "unused" not in extracted.head and "print(" not in extracted.head and "assert False" not in extracted.head
    assert run(problem, extracted.head)["passed"]


def test_python_answer_cut_by_the_token_limit_keeps_what_parses() -> None:
    problem = HUMANEVAL["HumanEval_2_truncate_number"]
    answer = (
        "```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n\n\n"
        "def describe(number):\n    return f'{number"
    )
    extracted = extract(answer, problem)
    assert extracted.found and "describe" not in extracted.head
    assert run(problem, extracted.head)["passed"]


def test_an_answer_without_the_function_is_run_as_is_and_fails() -> None:
    problem = HUMANEVAL["HumanEval_2_truncate_number"]
    extracted = extract("I cannot help with that.", problem)
    assert not extracted.found
    assert not run(problem, extracted.head)["passed"]


def test_java_answer_as_a_whole_class_with_main_runs_against_the_tests() -> None:
    problem = MULTIPLE_JAVA["HumanEval_23_strlen"]
    assert function_name(problem) == "strlen"
    answer = (
        "```java\nimport java.util.*;\nimport java.util.function.IntUnaryOperator;\n\nclass Problem {\n"
        "    private static final IntUnaryOperator SAME = x -> x;\n\n"
        "    public static long strlen(String string) {\n        return SAME.applyAsInt(count(string));\n    }\n\n"
        "    static int count(String s) { return s.length(); }\n\n"
        '    public static void main(String[] args) {\n        System.out.println(strlen("abc"));\n    }\n}\n```\n'
        "This returns the length."
    )
    extracted = extract(answer, problem)
    assert extracted.found
    assert extracted.head.startswith("import java.util.function.IntUnaryOperator;\n")  # the answer's own import
    assert "System.out.println" not in extracted.head  # its main is dropped; the tests bring theirs
    verdict = run(problem, extracted.head)
    assert verdict["passed"], verdict["stderr"]


def test_java_answer_with_a_bare_method_and_a_wrong_one() -> None:
    problem = MCEVAL_JAVA[next(iter(MCEVAL_JAVA))]
    signature = _signature(problem)
    bare = f"Use a loop:\n```java\n{signature} {{\n{problem.canonical_solution.rstrip()}\n}}\n```"
    verdict = run(problem, extract(bare, problem).head)
    assert verdict["passed"], verdict["stderr"]
    wrong = f'```java\n{signature} {{\n        throw new RuntimeException("no");\n    }}\n```'
    extracted = extract(wrong, problem)
    assert extracted.found and "RuntimeException" in extracted.head
    assert not run(problem, extracted.head)["passed"]


def _signature(problem: Problem) -> str:
    line = next(line for line in reversed(problem.prompt.splitlines()) if function_name(problem) + "(" in line)
    return line.strip().rstrip("{").strip()


def test_completion_keys_are_unchanged_and_instruct_keys_differ() -> None:
    base = {"temperature": 0.2, "top_p": 0.95, "max_new_tokens": 64, "seed": 0}
    completion = SamplingParams(n=2, **base)
    # The key of a completion-mode sample is what it was before prompt modes existed: stored samples stay valid.
    assert completion.as_key() == base
    assert completion_key("v", "humaneval", "p", 0, completion.as_key()) == completion_key(
        "v", "humaneval", "p", 0, base
    )
    keys = {
        completion_key("v", "humaneval", "p", 0, SamplingParams(n=2, **base, **extra).as_key())
        for extra in (
            {},
            {"prompt_mode": "instruct"},
            {"prompt_mode": "instruct", "response_prefix": False},
        )
    }
    assert len(keys) == 3
