"""Prompt modes of a benchmark: ``completion`` (the model continues the problem's prompt) or ``instruct``.

In instruct mode a chat model gets one user message asking it to complete the problem's function (the prompt in
a fenced block, as EvalPlus and bigcode-evaluation-harness instruct tasks do), and its answer starts with a
response prefix, the prompt itself, which the model continues as a completion model would (HumanEvalPack's way:
bigcode-evaluation-harness's instruct prompts end with the function's start). The model's own chat template (from
its tokenizer) formats both. The code to run is then extracted from the answer (``codequant.extraction``).
"""

from __future__ import annotations

from typing import Any, Literal

from codequant.benchmarks import Problem
from codequant.languages import get_language

PromptMode = Literal["completion", "instruct"]
PROMPT_MODES: tuple[str, ...] = ("completion", "instruct")

#: Bumped whenever the instruction or the response prefix changes: instruct completions are keyed by it.
INSTRUCT_VERSION = 1


def _fenced(language: str, code: str) -> str:
    return f"```{language}\n{code}" + ("" if code.endswith("\n") else "\n") + "```\n"


def instruction(problem: Problem) -> str:
    """The user message: what to write, then the problem's prompt in a fenced code block."""
    name = get_language(problem.language).label
    return (
        f"Complete the following {name} function so that it passes its tests. Answer with the complete function, "
        f"with the imports and helpers it needs, in one fenced code block; do not write tests or example usage.\n\n"
        + _fenced(problem.language, problem.prompt)
    )


def response_prefix(problem: Problem) -> str:
    """How the assistant's answer starts: the prompt again, which the model continues."""
    return problem.prompt


def messages(problem: Problem, *, with_prefix: bool = True) -> list[dict[str, str]]:
    """The chat messages of one problem: the instruction, then (``with_prefix``) the assistant's prefix to continue."""
    chat = [{"role": "user", "content": instruction(problem)}]
    if with_prefix:
        chat.append({"role": "assistant", "content": response_prefix(problem)})
    return chat


def key_config(mode: str, response_prefix: bool = True) -> dict[str, Any] | None:
    """What of the prompt format determines a completion (part of its key); None for completion mode, whose keys
    stay as they were before prompt modes existed."""
    if mode == "completion":
        return None
    return {"mode": mode, "version": INSTRUCT_VERSION, "response_prefix": response_prefix}
