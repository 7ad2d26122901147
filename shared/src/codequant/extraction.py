"""Code extraction from chat answers, in the spirit of EvalPlus's ``sanitize``.

An answer's code is looked for in its fenced blocks (those tagged with the problem's language first, then the
others, then the whole answer); the first candidate that defines the problem's function wins. Of it we keep the
imports, the function and what it depends on (helpers, classes, constants), and drop tests, prints and main.
The result is the *head* of a program, run exactly as a completion is: ``head + "\\n" + tests``. It starts with
the problem's prompt up to the function (the benchmark's imports and helpers), so an answer that omits them
still runs; for Java the head ends inside the function, where the benchmark's tests start by closing it. What to
keep and how a head is laid out are each language's rules (``Language.extraction``, ``codequant.languages``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from codequant.benchmarks import Problem
from codequant.languages import Extraction, canonical_name, get_language

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n", re.MULTILINE)


@dataclass(frozen=True)
class Extracted:
    """The program head to run before the tests, and whether the problem's function was found in the answer."""

    head: str
    found: bool


def fenced_blocks(text: str, language: str) -> list[str]:
    """Code blocks of a Markdown answer: those tagged ``language`` first, then the others, in order.

    A block left open (the answer ran out of tokens) runs to the end of the text."""
    tagged: list[str] = []
    others: list[str] = []
    known = canonical_name(language)
    tags = (language, *(get_language(known).fence_tags if known else ()))
    position = 0
    while (opening := _FENCE.search(text, position)) is not None:
        closing = re.compile(r"^[ \t]*```[ \t]*$", re.MULTILINE).search(text, opening.end())
        body = text[opening.end() : closing.start() if closing else len(text)]
        (tagged if opening.group(1).lower() in tags else others).append(body)
        position = closing.end() if closing else len(text)
    return tagged + others


def _rules(problem: Problem) -> Extraction:
    """The extraction rules of the problem's language; ValueError when it has none (no instruct mode)."""
    rules = get_language(problem.language).extraction
    if rules is None:
        raise ValueError(f"{problem.name}: no code extraction rules for {problem.language} (instruct mode)")
    return rules


def function_name(problem: Problem) -> str:
    """The name of the function the problem asks for: its entry point, else the last one its prompt declares."""
    if problem.entry_point:
        return problem.entry_point
    names = _rules(problem).declared_functions(problem.prompt)
    if not names:
        raise ValueError(f"{problem.name}: its prompt declares no function")
    return names[-1]


def extract(answer: str, problem: Problem) -> Extracted:
    """The program head for a chat ``answer`` (response prefix included) to ``problem``."""
    rules = _rules(problem)
    name = function_name(problem)
    candidates = [*fenced_blocks(answer, problem.language), answer]
    for code in candidates:
        kept = rules.sanitize(code, name, problem.prompt + problem.tests)
        if kept is not None:
            return Extracted(rules.head(problem.prompt, name, kept), True)
    return Extracted(rules.head(problem.prompt, name, [candidates[0]]), False)
