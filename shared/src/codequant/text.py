"""Text every output and every store can hold: what a program prints is bytes, PostgreSQL's text holds no NUL."""

from __future__ import annotations

#: What stands for a NUL character (and for bytes that are not UTF-8) in stored and written text.
REPLACEMENT = "\ufffd"


def storable(text: str) -> str:
    """``text`` with each NUL replaced by U+FFFD: PostgreSQL's text type cannot hold NUL, so every store (SQLite
    too, for the same answer everywhere) and every output keeps this form."""
    return text.replace("\0", REPLACEMENT) if "\0" in text else text


def decode_output(data: bytes) -> str:
    """A program's output as storable text: UTF-8, with bytes that are not UTF-8 and NUL bytes as U+FFFD."""
    return storable(data.decode("utf-8", "replace"))
