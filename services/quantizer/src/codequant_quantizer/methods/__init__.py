"""Quantization methods: one module per method, each registering one ``Quantizer`` (see ``base``).

Every module of this package is imported, so a method's implementation is one new file here beside its variant
model in ``codequant.study.methods``. The heavy libraries (llm-compressor, bitsandbytes) are imported only when
a method runs.
"""

from __future__ import annotations

import importlib
import pkgutil

from codequant_quantizer.methods.base import (
    QuantizeJob,
    Quantizer,
    quantizer_for,
    register_quantizer,
    unregister_quantizer,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base":
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["QuantizeJob", "Quantizer", "quantizer_for", "register_quantizer", "unregister_quantizer"]
