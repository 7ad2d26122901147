"""The method registry: ``method:`` string -> variant model class, like transformers' quantizer auto-mapping.

Built-in methods are the modules of this package; each registers its class with ``@register_variant``. A study's
variant is validated by the class its ``method`` names, so registering a class is all a new method needs here.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, PlainSerializer, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError

from codequant.study.methods.base import VariantModel

_VARIANTS: dict[str, type[VariantModel]] = {}
V = TypeVar("V", bound=type[VariantModel])


def register_variant(cls: V) -> V:
    """Register a variant model for the method name(s) of its ``method`` Literal; returns the class."""
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise TypeError(f"{cls.__name__} does not implement {missing}")
    names = getattr(cls.model_fields["method"].annotation, "__args__", ())
    if not names or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{cls.__name__}.method must be a Literal of method names")
    for name in names:
        if name in _VARIANTS and _VARIANTS[name] is not cls:
            raise TypeError(f"method {name!r} is registered already by {_VARIANTS[name].__name__}")
        _VARIANTS[name] = cls
    return cls


def unregister_variant(cls: type[VariantModel]) -> None:
    """Remove a registered class (for tests that register a throwaway method)."""
    for name in [n for n, c in _VARIANTS.items() if c is cls]:
        del _VARIANTS[name]


def methods() -> tuple[str, ...]:
    """Every registered method name, in registration order."""
    return tuple(_VARIANTS)


def quantized_methods() -> frozenset[str]:
    """Methods whose weights the quantizer writes into a model folder (the baseline is served as it is)."""
    return frozenset(name for name, cls in _VARIANTS.items() if cls.quantized)


def variant_class(method: str) -> type[VariantModel]:
    """The variant model of a method; KeyError naming the known methods otherwise."""
    try:
        return _VARIANTS[method]
    except KeyError:
        raise KeyError(f"unknown method {method!r}; known: {', '.join(_VARIANTS)}") from None


def variant_classes() -> list[type[VariantModel]]:
    """Each registered class once."""
    return list(dict.fromkeys(_VARIANTS.values()))


def method_packages(use: Literal["quantize", "serve"]) -> tuple[str, ...]:
    """The libraries the registered methods declare for making (``quantize``) or serving (``serve``) their folders,
    each once, in registration order."""
    found = (cls.quantize_packages if use == "quantize" else cls.serve_packages for cls in variant_classes())
    return tuple(dict.fromkeys(package for packages in found for package in packages))


def format_class(quant_method: str | None) -> type[VariantModel] | None:
    """The method whose folders carry ``quantization_config.quant_method`` = ``quant_method`` (None: no such one)."""
    return next((cls for cls in variant_classes() if quant_method and cls.checkpoint_format == quant_method), None)


def _validate(value: Any) -> VariantModel:
    if isinstance(value, VariantModel):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("model_type", "a variant must be a mapping of fields")
    method = value.get("method")
    if not isinstance(method, str) or method not in _VARIANTS:
        error = PydanticCustomError(
            "union_tag_invalid",
            "must be one of {known}, got {got}",
            {"known": ", ".join(_VARIANTS), "got": repr(method)},
        )
        raise ValidationError.from_exception_data("variant", [{"type": error, "loc": ("method",), "input": method}])
    # A ValidationError raised here keeps its locations (prefixed with this field's), so errors name the field.
    return _VARIANTS[method].model_validate(value)


def _serialize(value: BaseModel) -> dict[str, Any]:
    return value.model_dump(mode="json")


#: A study variant: validated by the class its ``method`` names.
VariantSpec = Annotated[VariantModel, PlainValidator(_validate), PlainSerializer(_serialize)]


def parse_variant(data: dict[str, Any]) -> VariantModel:
    """Validate one variant (pydantic ValidationError with field locations when invalid)."""
    from pydantic import TypeAdapter

    return TypeAdapter(VariantSpec).validate_python(data)
