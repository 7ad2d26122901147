"""JavaScript on Node.js (MultiPL-E's programs; no instruct mode: no extraction rules yet)."""

from __future__ import annotations

from codequant.languages.registry import Language, register_language

JAVASCRIPT = register_language(Language(name="javascript", label="JavaScript", suffix=".js", multiple_name="js"))
