"""C++ (MultiPL-E's C++17 programs; no instruct mode: no extraction rules yet)."""

from __future__ import annotations

from codequant.languages.registry import Language, register_language

CPP = register_language(Language(name="cpp", label="C++", suffix=".cpp", multiple_name="cpp", tests_close_block=True))
