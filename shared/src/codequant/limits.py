"""Execution limits; they are part of every execution's key."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Per-program limits: wall-clock seconds, memory, and bytes kept per output stream."""

    timeout_s: float = 15.0
    memory_mb: int = 1024
    max_output_bytes: int = 64_000

    def as_key(self) -> dict[str, Any]:
        """The limits as they enter ``codequant.keys.execution_key``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Limits:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})
