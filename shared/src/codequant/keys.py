"""Deterministic keys for every unit of work, so re-runs skip what is stored.

A key is the SHA-256 of a canonical JSON encoding of everything that determines
the unit's result; two units with the same key are interchangeable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(payload: Any) -> str:
    """Hex SHA-256 of ``payload`` encoded as canonical JSON (sorted keys, no whitespace)."""
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def variant_key(model: dict[str, Any], variant: dict[str, Any]) -> str:
    """Key of a model variant: the model's source and the variant's method configuration."""
    return stable_hash({"model": model, "variant": variant})[:32]


def completion_key(variant: str, benchmark: str, problem: str, sample: int, sampling: dict[str, Any]) -> str:
    """Key of one sampled completion: variant, problem, sample index and sampling parameters."""
    return stable_hash(
        {"variant": variant, "benchmark": benchmark, "problem": problem, "sample": sample, "sampling": sampling}
    )[:40]


#: Bumped whenever the executor's verdict for the same program can change (version 2: the tests' start line
#: is part of the key, and the harness proves that the tests ran). Old stored executions never match again.
EXECUTION_KEY_VERSION = 2


def execution_key(program: str, language: str, limits: dict[str, Any], tests_line: int = 0) -> str:
    """Key of one execution: the program text, its language, the limits and where its tests start.

    ``tests_line`` is the 1-based line where the tests begin (prompt/completion form), or 0 for a bare
    ``program``; the same text in the two forms can get different verdicts, so they never share a key.
    """
    payload = {
        "program": program,
        "language": language,
        "limits": limits,
        "tests_line": tests_line,
        "version": EXECUTION_KEY_VERSION,
    }
    return stable_hash(payload)[:40]
