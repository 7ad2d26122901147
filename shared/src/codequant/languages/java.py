"""Java: extraction of a method, with the class members and imports it comes with, from a chat answer."""

from __future__ import annotations

import re

from codequant.javasource import matching_brace, skip_noncode
from codequant.languages.registry import Extraction, Language, register_language

_JAVA_DECL = re.compile(r"\b([A-Za-z_$][\w$]*)\s*\([^;{}()]*\)\s*(?:throws\s+[\w$.,\s]+)?\{?\s*$")
_JAVA_IMPORT = re.compile(r"^[ \t]*import\s+(?:static\s+)?[\w$.]+(?:\.\*)?\s*;[ \t]*$", re.MULTILINE)


class JavaExtraction(Extraction):
    """The answer's imports and class members, the method last and left open (the tests start by closing it)."""

    def declared_functions(self, prompt: str) -> list[str]:
        return [m.group(1) for line in prompt.splitlines() if (m := _JAVA_DECL.search(line))]

    def sanitize(self, code: str, name: str, known: str) -> list[str] | None:
        return _sanitize_java(code, name, known)

    def head(self, prompt: str, name: str, parts: list[str]) -> str:
        """Imports go first, then the prompt up to the method's declaration, then the code."""
        lines = prompt.splitlines(keepends=True)
        offsets = [sum(len(line) for line in lines[:i]) for i in range(len(lines))]
        declared = [offsets[i] for i, line in enumerate(lines) if (m := _JAVA_DECL.search(line)) and m.group(1) == name]
        start = declared[-1] if declared else len(prompt)
        code = "".join(parts)
        imports = [i for i in _JAVA_IMPORT.findall(code) if i.strip() not in prompt]
        body = _JAVA_IMPORT.sub("", code).strip("\n")
        return "".join(line.strip() + "\n" for line in imports) + prompt[:start] + body + "\n"


JAVA = register_language(
    Language(
        name="java",
        label="Java",
        suffix=".java",
        multiple_name="java",
        tests_close_block=True,
        extraction=JavaExtraction(),
    )
)


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


def _sanitize_java(code: str, name: str, known: str) -> list[str] | None:
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
