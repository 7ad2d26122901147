"""Quantization methods as study variants: one module per method, each registering one ``VariantModel``.

Like transformers' quantizer registry: adding a method means one new module here (its variant model: fields,
nominal bits, label, footprint prediction) and one in ``codequant_quantizer.methods`` (its implementation).
Every module of this package is imported, so a new file registers itself.
"""

from __future__ import annotations

import importlib
import pkgutil

from codequant.study.methods.base import (
    CALIBRATION_RECIPES,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_SAMPLES_PER_REQUEST,
    DTYPE_BITS,
    CalibrationSpec,
    EndpointSpec,
    Strict,
    VariantModel,
)
from codequant.study.methods.registry import (
    VariantSpec,
    format_class,
    method_packages,
    methods,
    parse_variant,
    quantized_methods,
    register_variant,
    unregister_variant,
    variant_class,
    variant_classes,
)

_FIRST = ("baseline", "aqlm", "rtn", "compressor", "bnb")  # the order methods are listed in messages
for _name in [*_FIRST, *sorted({m.name for m in pkgutil.iter_modules(__path__)} - {*_FIRST, "base", "registry"})]:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = [
    "CALIBRATION_RECIPES",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "DEFAULT_SAMPLES_PER_REQUEST",
    "DTYPE_BITS",
    "CalibrationSpec",
    "EndpointSpec",
    "Strict",
    "VariantModel",
    "VariantSpec",
    "format_class",
    "method_packages",
    "methods",
    "parse_variant",
    "quantized_methods",
    "register_variant",
    "unregister_variant",
    "variant_class",
    "variant_classes",
]
