"""Python: MultiPL-E's stop tokens, and extraction of a function with what it uses from a chat answer."""

from __future__ import annotations

import ast
import re

from codequant.languages.registry import Extraction, Language, register_language

#: MultiPL-E's Python stop tokens; at most 4 so that real TGI (max_stop_sequences=4) accepts them.
PYTHON_STOP_TOKENS = ("\ndef", "\n#", "\nif", "\nclass")
_PY_DEF = r"^(?:async[ \t]+)?def[ \t]+{name}[ \t]*\("


class PythonExtraction(Extraction):
    """Imports, the function and the top-level definitions it uses (helpers, classes, constants)."""

    def declared_functions(self, prompt: str) -> list[str]:
        return re.findall(r"^(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", prompt, re.MULTILINE)

    def sanitize(self, code: str, name: str, known: str) -> list[str] | None:
        return _sanitize_python(code, name)

    def head(self, prompt: str, name: str, parts: list[str]) -> str:
        match = list(re.finditer(_PY_DEF.format(name=re.escape(name)), prompt, re.MULTILINE))
        start = match[-1].start() if match else len(prompt)
        preamble = prompt[:start]
        new = [part.strip("\n") for part in parts if part.strip() and part.strip() not in preamble]
        return preamble + "\n\n\n".join(new) + "\n"


PYTHON = register_language(
    Language(
        name="python",
        label="Python",
        suffix=".py",
        multiple_name="py",
        stop_tokens=PYTHON_STOP_TOKENS,
        fence_tags=("py", "python3"),
        extraction=PythonExtraction(),
    )
)


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
