"""Execution limits; they are part of every execution's key."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

#: Bounds a run may ask for: a finite, positive timeout of at most a day; enough memory for an interpreter.
MAX_TIMEOUT_S = 24 * 3600.0
MIN_MEMORY_MB = 64
MAX_MEMORY_MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-program limits: wall-clock seconds, memory, and bytes kept per output stream.

    Invalid values (NaN, infinite, zero or negative, out of range) raise ValueError naming the field.
    """

    timeout_s: float = 15.0
    memory_mb: int = 1024
    max_output_bytes: int = 64_000

    def __post_init__(self) -> None:
        timeout = self.timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout):
            raise ValueError(f"timeout_s must be a finite number of seconds, got {timeout!r}")
        if not 0 < timeout <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s must be above 0 and at most {MAX_TIMEOUT_S:.0f}, got {timeout!r}")
        memory = self.memory_mb
        if isinstance(memory, bool) or not isinstance(memory, int) or not MIN_MEMORY_MB <= memory <= MAX_MEMORY_MB:
            raise ValueError(f"memory_mb must be a whole number from {MIN_MEMORY_MB} to {MAX_MEMORY_MB}, got {memory}")
        cap = self.max_output_bytes
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ValueError(f"max_output_bytes must be a positive whole number, got {cap!r}")

    def as_key(self) -> dict[str, Any]:
        """The limits as they enter ``codequant.keys.execution_key``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Limits:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})
