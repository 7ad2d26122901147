"""The languages benchmarks are written in: one module per language, each registering one ``Language``.

A language's description (names, source suffix, test layout, stop tokens, fence tags, extraction rules) lives here; the
executor runs it with one ``Runner`` of its own (``codequant_executor.runner``). Every module of this package is
imported, so a new file registers itself (docs/architecture.md, "Extensions").
"""

from __future__ import annotations

import importlib
import pkgutil

from codequant.languages.registry import (
    Extraction,
    Language,
    UnknownLanguage,
    accepted_names,
    canonical_name,
    get_language,
    language_names,
    register_language,
    unregister_language,
)

__all__ = [
    "Extraction",
    "Language",
    "UnknownLanguage",
    "accepted_names",
    "canonical_name",
    "get_language",
    "language_names",
    "register_language",
    "unregister_language",
]

_FIRST = ("python", "java", "cpp", "javascript")  # the order languages are listed in messages
for _name in [*_FIRST, *sorted({m.name for m in pkgutil.iter_modules(__path__)} - {*_FIRST, "registry"})]:
    importlib.import_module(f"{__name__}.{_name}")
