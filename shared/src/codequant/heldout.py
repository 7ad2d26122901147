"""A small held-out code set for perplexity: short Python and Java snippets written for codequant (CC0).

None of them comes from HumanEval, MultiPL-E, McEval or any other benchmark or training set codequant uses, so
the tiny model never saw them. Perplexity on them measures how well a served variant still models code it did
not memorise. The snippets are package data (``data/heldout.jsonl``: one ``{"language", "text"}`` record a line,
in a fixed order); ``HELD_OUT_CODE`` maps a language to its snippets, ``held_out_texts`` lists them. A change of
the texts or their order changes every perplexity: it needs a new ``NAME``.
"""

from __future__ import annotations

import json
from importlib import resources

NAME = "codequant-heldout-v1"


def _load() -> dict[str, list[str]]:
    snippets: dict[str, list[str]] = {}
    lines = (resources.files("codequant") / "data" / "heldout.jsonl").read_text(encoding="utf-8")
    for line in lines.splitlines():
        record = json.loads(line)
        snippets.setdefault(record["language"], []).append(record["text"])
    return snippets


#: language -> snippets
HELD_OUT_CODE: dict[str, list[str]] = _load()


def held_out_texts(languages: tuple[str, ...] = ("python", "java")) -> list[str]:
    """The held-out snippets of ``languages``, in a fixed order."""
    unknown = [lang for lang in languages if lang not in HELD_OUT_CODE]
    if unknown:
        raise ValueError(f"no held-out code in {', '.join(unknown)}; known: {', '.join(HELD_OUT_CODE)}")
    return [text for lang in languages for text in HELD_OUT_CODE[lang]]
