"""Rules of command-line options that typer's own (``min``/``max``, ``Literal`` choices, ``exists``) cannot state,
as option callbacks: typer checks them before the command runs, and ``codequant.cli.run`` reports a failure as one
line, exit code 2."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import typer

from codequant.errors import InputError
from codequant.jsonl import not_regular_file

N = TypeVar("N", int, float)
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")
#: A Hugging Face hub repository id: ``name`` or ``owner/name`` (huggingface_hub's rule, without its length cap).
_HUB_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")


def above(bound: float) -> Callable[[N | None], N | None]:
    """A callback refusing a value that is not a finite number above ``bound`` (typer's ``min`` includes it)."""

    def check(value: N | None) -> N | None:
        if value is not None and not (math.isfinite(value) and value > bound):
            raise typer.BadParameter(f"must be above {bound:g}, got {value}")
        return value

    return check


def generation_api(value: str) -> str:
    """A callback accepting the name of a registered generation protocol (``codequant.protocols``)."""
    from codequant.protocols import api_names  # loads the protocols' modules: only when the option is used

    if value not in api_names():
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(repr(name) for name in api_names())}")
    return value


def fraction(value: float | None) -> float | None:
    """A callback refusing a value outside (0, 1]."""
    if value is not None and not 0 < value <= 1:
        raise typer.BadParameter(f"must be above 0 and at most 1, got {value}")
    return value


def margin_pp(value: N | None) -> N | None:
    """A pass@1 margin in percentage points: above 0 and below 100 (an option not given passes)."""
    if value is not None and not 0 < value < 100:
        raise typer.BadParameter(f"percentage points above 0 and below 100, got {value:g}")
    return value


def device(value: str | None) -> str | None:
    """A callback accepting ``cpu``, ``cuda`` or ``cuda:N``."""
    if value is not None and not _DEVICE.match(value):
        raise typer.BadParameter(f"must be cpu, cuda or cuda:N, got {value!r}")
    return value


def one_of_each(choices: Sequence[str]) -> Callable[[str | None], str | None]:
    """A callback for a comma-separated list whose every item is one of ``choices``."""

    def check(value: str | None) -> str | None:
        if value is None:
            return value
        items = [item.strip() for item in value.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if not items or unknown:
            raise typer.BadParameter(f"expected a comma-separated list of {', '.join(choices)}, got {value!r}")
        return value

    return check


def looks_like_path(model: str) -> bool:
    """Whether ``model`` (a folder or a hub id) can only be meant as a local path: it starts with ``/``, ``.`` or
    ``~``, is not a valid hub id (``owner/name``), or starts with a folder that exists here."""
    if model.startswith(("/", ".", "~")) or not _HUB_ID.match(model):
        return True
    first = model.split("/", 1)[0]
    return "/" in model and Path(first).is_dir()


def model_path(*, files: bool = False) -> Callable[[str | None], str | None]:
    """A callback refusing, at once, a ``--model`` that looks like a path (``looks_like_path``) but names no folder
    (nor file, with ``files``); a hub id passes."""

    def check(value: str | None) -> str | None:
        if value is None or not looks_like_path(value):
            return value
        path = Path(value).expanduser()
        if not path.exists():
            raise typer.BadParameter(f"no such {'file or folder' if files else 'folder'}: {value}")
        if not files and not path.is_dir():
            raise typer.BadParameter(f"{value} is not a folder (give a model folder or a hub id)")
        return str(path) if value.startswith("~") else value  # as given, so a served model keeps its name

    return check


def check_out_file(out: Path, flag: str = "--out") -> None:
    """``out`` must name a regular file or nothing yet, in a folder that exists or can be made (checked before
    anything runs); InputError. A symbolic link, device, pipe or socket is refused, never replaced: writing
    ``--out /dev/null`` as root would otherwise replace the host's /dev/null with a regular file."""
    try:
        if out.is_dir():
            raise InputError(f"{flag} {out}: is a directory, expected a file path")
        not_regular = not_regular_file(out)
        if not_regular:
            raise InputError(f"{flag} {out}: is {not_regular}, expected a regular file (it is never replaced)")
    except OSError as exc:
        raise InputError(f"{flag} {out}: {exc.strerror}") from None
    _check_writable_above(out, flag)


def check_out_folder(out: Path, flag: str = "--out") -> None:
    """``out`` must name a folder or nothing yet, below a folder that exists and can be written (checked before
    anything runs, so a long build never fails at its end on a path it could not have written); InputError."""
    try:
        if out.exists() and not out.is_dir():
            raise InputError(f"{flag} {out}: is not a folder")
    except OSError as exc:
        raise InputError(f"{flag} {out}: {exc.strerror}") from None
    _check_writable_above(out, flag)


def _check_writable_above(out: Path, flag: str) -> None:
    """The nearest existing folder above ``out`` must be a folder this process can write in; InputError."""
    try:
        folder = next((p for p in [out.parent, *out.parent.parents] if p.exists()), Path("/"))
    except OSError as exc:
        raise InputError(f"{flag} {out}: {exc.strerror}") from None
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {out}: cannot write in {folder}")
