"""Small, dependency-free scanning of Java source: brace matching and top-level classes.

Enough to reshape benchmark programs and find their main class; it skips string and char literals
and comments, and does not try to parse Java.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CLASS = re.compile(r"\b(?:(public)\s+)?(?:(?:final|abstract|static)\s+)*class\s+([A-Za-z_$][\w$]*)")
_MAIN = re.compile(r"\bstatic\s+void\s+main\s*\(")


def skip_noncode(text: str, i: int) -> int:
    """If a literal or comment starts at ``i``, the index just after it; else ``i``."""
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        return len(text) if end < 0 else end + 2
    if text[i] in "\"'":
        quote, j = text[i], i + 1
        while j < len(text) and text[j] != quote:
            j += 2 if text[j] == "\\" else 1
        return j + 1
    return i


def matching_brace(text: str, opening: int) -> int:
    """Index of the brace closing the one at ``opening``; raises ValueError when unbalanced."""
    depth, i = 0, opening
    while i < len(text):
        j = skip_noncode(text, i)
        if j != i:
            i = j
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced braces")


@dataclass(frozen=True)
class JavaClass:
    name: str
    public: bool
    has_main: bool


def top_level_classes(text: str) -> list[JavaClass]:
    """Top-level classes of a compilation unit, with whether each declares ``static void main``."""
    classes: list[JavaClass] = []
    i = 0
    while i < len(text):
        j = skip_noncode(text, i)
        if j != i:
            i = j
            continue
        match = _CLASS.match(text, i) if (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) else None
        if match is None:
            i += 1
            continue
        opening = text.find("{", match.end())
        if opening < 0:
            break
        try:
            closing = matching_brace(text, opening)
        except ValueError:
            closing = len(text) - 1
        body = text[opening:closing]
        classes.append(JavaClass(match.group(2), bool(match.group(1)), bool(_MAIN.search(body))))
        i = closing + 1
    return classes
