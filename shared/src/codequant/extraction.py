"""Code extraction from chat answers, in the spirit of EvalPlus's ``sanitize``.

An answer's code is looked for in its fenced blocks (those tagged with the problem's language first, then the
others, then the whole answer); the first candidate that defines the problem's function wins. Of it we keep the
imports, the function and what it depends on (helpers, classes, constants), and drop tests, prints and main.
The result is the *head* of a program, run exactly as a completion is: ``head + "\\n" + tests``. It starts with
the problem's prompt up to the function (the benchmark's imports and helpers), so an answer that omits them
still runs; for Java the head ends inside the function, where the benchmark's tests start by closing it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from codequant.benchmarks import Problem
from codequant.javasource import matching_brace, skip_noncode

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n", re.MULTILINE)
_PY_DEF = r"^(?:async[ \t]+)?def[ \t]+{name}[ \t]*\("
_JAVA_DECL = re.compile(r"\b([A-Za-z_$][\w$]*)\s*\([^;{}()]*\)\s*(?:throws\s+[\w$.,\s]+)?\{?\s*$")
_JAVA_IMPORT = re.compile(r"^[ \t]*import\s+(?:static\s+)?[\w$.]+(?:\.\*)?\s*;[ \t]*$", re.MULTILINE)
_TAGS = {"python": ("python", "py", "python3"), "java": ("java",)}


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
    position = 0
    while (opening := _FENCE.search(text, position)) is not None:
        closing = re.compile(r"^[ \t]*```[ \t]*$", re.MULTILINE).search(text, opening.end())
        body = text[opening.end() : closing.start() if closing else len(text)]
        (tagged if opening.group(1).lower() in _TAGS.get(language, (language,)) else others).append(body)
        position = closing.end() if closing else len(text)
    return tagged + others


def function_name(problem: Problem) -> str:
    """The name of the function the problem asks for: its entry point, else the last one its prompt declares."""
    if problem.entry_point:
        return problem.entry_point
    if problem.language == "python":
        names = re.findall(r"^(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", problem.prompt, re.MULTILINE)
    else:
        names = [m.group(1) for line in problem.prompt.splitlines() if (m := _JAVA_DECL.search(line))]
    if not names:
        raise ValueError(f"{problem.name}: its prompt declares no function")
    return names[-1]


def extract(answer: str, problem: Problem) -> Extracted:
    """The program head for a chat ``answer`` (response prefix included) to ``problem``."""
    name = function_name(problem)
    candidates = [*fenced_blocks(answer, problem.language), answer]
    for code in candidates:
        kept = _sanitize_python(code, name) if problem.language == "python" else _sanitize_java(code, name, problem)
        if kept is not None:
            return Extracted(_head(problem, name, kept), True)
    return Extracted(_head(problem, name, [candidates[0]]), False)


def _head(problem: Problem, name: str, parts: list[str]) -> str:
    """The prompt up to the function's declaration, then the extracted code (Java: imports go first)."""
    prompt = problem.prompt
    if problem.language == "python":
        match = list(re.finditer(_PY_DEF.format(name=re.escape(name)), prompt, re.MULTILINE))
        start = match[-1].start() if match else len(prompt)
        preamble = prompt[:start]
        new = [part.strip("\n") for part in parts if part.strip() and part.strip() not in preamble]
        return preamble + "\n\n\n".join(new) + "\n"
    lines = prompt.splitlines(keepends=True)
    offsets = [sum(len(line) for line in lines[:i]) for i in range(len(lines))]
    starts = [offsets[i] for i, line in enumerate(lines) if (m := _JAVA_DECL.search(line)) and m.group(1) == name]
    start = starts[-1] if starts else len(prompt)
    code = "".join(parts)
    imports = [i for i in _JAVA_IMPORT.findall(code) if i.strip() not in prompt]
    body = _JAVA_IMPORT.sub("", code).strip("\n")
    return "".join(line.strip() + "\n" for line in imports) + prompt[:start] + body + "\n"


# -- Python ------------------------------------------------------------------------------------------------------
def _parse_longest(code: str) -> tuple[ast.Module, list[str]] | None:
    """The longest prefix of ``code`` (whole lines) that parses, with its lines; None when none does."""
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        try:
            return ast.parse("\n".join(lines[:end])), lines[:end]
        except (SyntaxError, ValueError):
            continue
    return None


def _sanitize_python(code: str, name: str) -> list[str] | None:
    """Imports, the function ``name`` and the top-level definitions it uses (transitively), each statement's source
    apart; None without the function."""
    parsed = _parse_longest(code)
    if parsed is None:
        return None
    tree, lines = parsed
    definitions: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            definitions[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    definitions[target.id] = node
    if not isinstance(definitions.get(name), ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    needed, todo = {name}, [name]
    while todo:
        for inner in ast.walk(definitions[todo.pop()]):
            used = inner.id if isinstance(inner, ast.Name) else None
            if used in definitions and used not in needed:
                needed.add(used)
                todo.append(used)
    kept_nodes = {id(definitions[n]) for n in needed}
    parts = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom) or id(node) in kept_nodes:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            parts.append("\n".join(lines[first - 1 : node.end_lineno]))
    return parts


# -- Java --------------------------------------------------------------------------------------------------------
def _code_positions(text: str) -> list[int]:
    """Indices of ``text`` that are code (not inside comments or literals)."""
    positions, i = [], 0
    while i < len(text):
        j = skip_noncode(text, i)
        if j != i:
            i = j
            continue
        positions.append(i)
        i += 1
    return positions


def _method_span(text: str, name: str, code: set[int]) -> tuple[int, int, int] | None:
    """(declaration line start, body opening brace, body closing brace) of the method ``name``, if declared."""
    for match in re.finditer(rf"\b{re.escape(name)}\s*\(", text):
        if match.start() not in code:
            continue
        close = text.find(")", match.end())
        after = re.match(r"\s*(?:throws\s+[\w$.,\s]+?)?\s*\{", text[close + 1 :]) if close >= 0 else None
        line_start = text.rfind("\n", 0, match.start()) + 1
        declared = re.search(r"[\w$>\]]\s+$", text[line_start : match.start()])  # a return type precedes the name
        if after is None or declared is None:
            continue
        opening = close + after.end()
        try:
            return line_start, opening, matching_brace(text, opening)
        except ValueError:
            return line_start, opening, len(text)
    return None


def _sanitize_java(code: str, name: str, problem: Problem) -> list[str] | None:
    """The answer's imports and class members, the method ``name`` last and left open; None without it.

    Members the benchmark already has are left out: main, what the prompt declares, and the helpers a McEval
    program's tests carry (as in completion mode, where the model writes only the method's body)."""
    positions = set(_code_positions(code))
    span = _method_span(code, name, positions)
    if span is None:
        return None
    start, _opening, closing = span
    imports = "".join(m.group(0).strip() + "\n" for m in _JAVA_IMPORT.finditer(code))
    target = code[start:closing].rstrip()
    others = ""
    owner = _enclosing_class_body(code, start, positions)
    if owner is not None:
        body_start, body_end = owner
        members = code[body_start:start] + code[min(closing + 1, body_end) : body_end]
        known = problem.prompt + problem.tests
        kept = [m for m in _members(_without_comments(members)) if not _declared(m, known) and m.strip() not in known]
        others = "\n".join(kept).strip("\n")
    return [imports + (others + "\n\n" if others.strip() else "") + target]


def _enclosing_class_body(code: str, index: int, positions: set[int]) -> tuple[int, int] | None:
    """(just after ``{``, index of ``}``) of the top-level class whose body holds ``index``, if any."""
    for match in re.finditer(r"\b(?:class|interface|record)\s+[A-Za-z_$][\w$]*[^{;]*\{", code):
        opening = match.end() - 1
        if match.start() not in positions or opening > index:
            continue
        try:
            closing = matching_brace(code, opening)
        except ValueError:
            closing = len(code)
        if opening < index < closing:
            return opening + 1, closing
    return None


def _without_comments(text: str) -> str:
    """``text`` without its comments (the prompt already documents the method)."""
    kept, i = [], 0
    while i < len(text):
        j = skip_noncode(text, i)
        if j == i:
            kept.append(text[i])
            i += 1
            continue
        if not text.startswith(("//", "/*"), i):
            kept.append(text[i:j])
        i = j
    return re.sub(r"\n[ \t]*(?=\n)", "\n", "".join(kept))


def _members(body: str) -> list[str]:
    """A class body split into its members: each ends at a top-level ``;`` or at the ``}`` closing its block."""
    members, depth, start = [], 0, 0
    positions = _code_positions(body)
    for i in positions:
        char = body[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if depth == 0 and char in ";}":
            members.append(body[start : i + 1])
            start = i + 1
    tail = body[start:]
    return [m for m in [*members, tail] if m.strip()]


def _declared(member: str, text: str) -> bool:
    """Whether ``text`` declares a method or field named as ``member`` is (main always counts as declared)."""
    header = re.split(r"[{=;]", member, maxsplit=1)[0]
    names = re.findall(r"([A-Za-z_$][\w$]*)\s*\(", header) or re.findall(r"([A-Za-z_$][\w$]*)\s*$", header)
    if not names:
        return False
    name = names[-1]
    return name == "main" or re.search(rf"[\w$>\]]\s+{re.escape(name)}\s*[(=;]", text) is not None
