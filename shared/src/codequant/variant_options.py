"""Command-line options derived from the variant models, so a method's fields are its flags.

``codequant quantize`` and ``codequant footprint`` offer one option per field of every registered method
(``--num-codebooks``, ``--bits``, ``--scheme``...), nested models flattened (``--calibration``, ``--nsamples``,
``--finetune-epochs``); a field's ``description`` is its help. A new method's fields appear without CLI code.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ValidationError

from codequant.errors import InputError
from codequant.study.methods import VariantModel, parse_variant, variant_classes

_NOT_OPTIONS = ("name", "method", "endpoint")


@dataclass(frozen=True)
class VariantOption:
    """One command-line option and the variant field it sets."""

    param: str  # Python parameter name
    flag: str  # e.g. --num-codebooks
    path: tuple[str, ...]  # field path in the variant, e.g. ("calibration", "nsamples")
    kind: Any  # int, float, str or bool
    choices: tuple[str, ...] | None
    help: str
    methods: tuple[str, ...]
    presence: bool = False  # True: the flag turns an optional section (e.g. finetune) on or off


def _methods_of(cls: type[VariantModel]) -> tuple[str, ...]:
    return typing.get_args(cls.model_fields["method"].annotation)


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _walk(model: type[BaseModel], prefix: tuple[str, ...], methods: tuple[str, ...]) -> list[VariantOption]:
    found = []
    for name, field in model.model_fields.items():
        if not prefix and name in _NOT_OPTIONS:
            continue
        annotation, optional = _strip_optional(field.annotation)
        path = (*prefix, name)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        flag = "--" + str(extra.get("option") or "-".join(path)).replace("_", "-")
        help_text = field.description or name.replace("_", " ")
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if optional:
                found.append(
                    VariantOption(
                        flag.lstrip("-").replace("-", "_"), flag, path, bool, None, help_text, methods, presence=True
                    )
                )
            found += _walk(annotation, path, methods)
            continue
        choices = None
        if typing.get_origin(annotation) is Literal:
            choices = tuple(str(a) for a in typing.get_args(annotation))
            annotation = str
        if annotation not in (int, float, str, bool):
            continue  # not expressible as one option
        found.append(
            VariantOption(flag.lstrip("-").replace("-", "_"), flag, path, annotation, choices, help_text, methods)
        )
    return found


def variant_options(classes: list[type[VariantModel]] | None = None) -> list[VariantOption]:
    """One option per distinct field of the registered (or given) variant models; same flag, same type."""
    merged: dict[str, VariantOption] = {}
    for cls in classes if classes is not None else variant_classes():
        for option in _walk(cls, (), _methods_of(cls)):
            seen = merged.get(option.flag)
            if seen is None:
                merged[option.flag] = option
                continue
            if (seen.kind, seen.path, seen.presence) != (option.kind, option.path, option.presence):
                raise TypeError(f"{option.flag}: methods {seen.methods} and {option.methods} disagree on its type")
            choices = tuple(dict.fromkeys((*(seen.choices or ()), *(option.choices or ())))) or None
            merged[option.flag] = VariantOption(
                seen.param, seen.flag, seen.path, seen.kind, choices, seen.help, (*seen.methods, *option.methods)
            )
    return list(merged.values())


def variant_from_options(method: str, given: dict[str, Any]) -> VariantModel:
    """The validated variant of ``method`` from the options given on the command line (None: not given);
    InputError naming the option otherwise."""
    options = variant_options()
    variant: dict[str, Any] = {"method": method}
    for option in options:
        value = given.get(option.param)
        if value is None:
            continue
        if method not in option.methods:
            raise InputError(
                f"{option.flag} does not apply to --method {method} (it is for {', '.join(option.methods)})"
            )
        if option.presence:
            if value:
                variant.setdefault(option.path[0], {})
            else:
                variant[option.path[0]] = None
            continue
        section = variant
        for part in option.path[:-1]:
            if section.get(part) is None:
                section[part] = {}
            section = section[part]
        section[option.path[-1]] = value
    try:
        return parse_variant({"name": "cli", **variant})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(part) for part in first["loc"])
        flag = next((o.flag for o in options if o.path == loc), ".".join(loc))
        message = first["msg"].removeprefix("Value error, ")
        raise InputError(f"{flag}: {message}" if flag else message) from None


def with_variant_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command one option per variant field; ``func`` receives them as ``variant_options`` (a dict of
    the options given, keyed by parameter name). Its own parameters stay as they are."""
    options = variant_options()
    signature = inspect.signature(func, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "variant_options"]
    taken = {p.name for p in own}
    derived = []
    for option in options:
        if option.param in taken:
            raise TypeError(f"{func.__name__}: parameter {option.param} clashes with a variant field")
        decls = [f"{option.flag}/--no-{option.flag[2:]}"] if option.kind is bool else [option.flag]
        info = typer.Option(*decls, help=f"{option.help} ({', '.join(option.methods)})", show_default=False)
        kind = Literal[option.choices] if option.choices else option.kind
        derived.append(
            inspect.Parameter(
                option.param, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, info]
            )
        )

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        given = {o.param: kwargs.pop(o.param, None) for o in options}
        return func(**kwargs, variant_options=given)

    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + derived
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command
