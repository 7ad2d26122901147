"""Read a study YAML file and report every problem as ``file:line: field: message``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from codequant.errors import InputError
from codequant.study.spec import Study


@dataclass(frozen=True)
class Problem:
    """One problem of a study: where it is (source, line, field) and what is wrong."""

    source: str
    message: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class StudyError(InputError):
    """An invalid study; ``details`` holds the problems, ``problems`` one line per problem."""

    def __init__(self, details: list[Problem]) -> None:
        self.details = details
        self.problems = [str(d) for d in details]
        super().__init__("\n".join(self.problems))


def load_study(path: str | Path) -> Study:
    """Parse and validate a study file; raise StudyError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError([Problem(str(path), "file not found")]) from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise StudyError([Problem(str(path), f"cannot read ({exc.__class__.__name__})")]) from None
    return parse_study(text, source=str(path))


def parse_study(text: str, source: str = "<study>") -> Study:
    """Validate YAML text as a study; ``source`` names it in error lines."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StudyError([Problem(source, f"invalid YAML: {problem}", line)]) from None
    if not isinstance(data, dict):
        raise StudyError([Problem(source, f"a study must be a mapping of fields, got {type(data).__name__}", 1)])
    try:
        return Study.model_validate(data)
    except ValidationError as exc:
        raise StudyError([_describe(error, node, source) for error in exc.errors()]) from None


def problem_at(text: str, source: str, loc: list[str | int], message: str) -> Problem:
    """A problem with the field at ``loc`` (e.g. ``["benchmarks", 0]``) of a study's YAML text, named and located
    the way parse_study names and locates its problems (for checks made after parsing)."""
    try:
        line = _line_of(yaml.compose(text, Loader=yaml.SafeLoader), loc)
    except yaml.YAMLError:
        line = None
    return Problem(source, message, line, _format_loc(loc))


def _describe(error: Any, node: yaml.Node | None, source: str) -> Problem:
    loc = list(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return Problem(source, message, _line_of(node, loc), _format_loc(loc) or "(top level)")


def _format_loc(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """1-based line of the deepest YAML node on ``loc`` that exists."""
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                break
            best = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            best = node.start_mark.line + 1
        else:
            break
    return best
