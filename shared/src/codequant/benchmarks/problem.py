"""The problem record every service exchanges (MultiPL-E field names)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Stop tokens of MBPP-style prompts, where the completion is a whole function (bigcode-evaluation-harness's
#: first four).
MBPP_STOP_TOKENS = ["\nclass", "\nassert", '\n"""', "\nprint"]


@dataclass(frozen=True)
class Problem:
    """One benchmark problem. The program to run is ``prompt + completion + "\\n" + tests``."""

    name: str
    language: str  # ours (``codequant.languages``)
    prompt: str
    tests: str
    stop_tokens: list[str]
    benchmark: str
    level: str | None = None
    entry_point: str | None = None
    #: A reference completion in this record's form (prompt + it + "\n" + tests passes), when known.
    canonical_solution: str | None = None
    #: The id in the upstream dataset, e.g. ``HumanEval/0`` or ``Java/53``.
    source_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def program(self, completion: str) -> str:
        """The full program for a completion, composed as MultiPL-E does."""
        return self.prompt + completion + "\n" + self.tests

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict with MultiPL-E field names (None fields dropped)."""
        return {k: v for k, v in asdict(self).items() if v is not None and v != []}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Problem:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in record.items() if k in known})
