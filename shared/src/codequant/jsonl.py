"""JSON Lines reading and writing with line-precise errors and atomic replacement."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import stat
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from codequant.errors import InputError


def read_jsonl(path: str | Path, *, allow_truncated_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-blank line; raise InputError naming ``path:line`` for anything else.

    ``allow_truncated_tail`` tolerates an unterminated, unparsable last line (an append
    interrupted by a crash); it is skipped instead of raising.
    """
    for _number, record in read_jsonl_numbered(path, allow_truncated_tail=allow_truncated_tail):
        yield record


def read_jsonl_numbered(
    path: str | Path, *, allow_truncated_tail: bool = False
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Like ``read_jsonl``, with each record's 1-based line number (for error messages about its fields)."""
    path = Path(path)
    lines = read_lines(path)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            is_tail = number == len(lines) and not line.endswith("\n")
            if allow_truncated_tail and is_tail:
                return
            raise InputError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
        except RecursionError:
            raise InputError(f"{path}:{number}: JSON nested too deeply") from None
        except ValueError as exc:  # NaN/Infinity (not JSON), an integer of more digits than Python converts
            raise InputError(f"{path}:{number}: invalid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        if "\\ud" in line.lower() and not _is_unicode(record):
            raise InputError(f"{path}:{number}: a string holds a lone surrogate (\\ud800-\\udfff), not Unicode text")
        yield number, record


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON: Python's reader accepts them, no other would read
    them back from our output."""
    raise ValueError(f"{name} is not a JSON value")


def read_input_records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """The numbered records of a command's JSONL input; InputError when it holds none (an empty input is a
    mistake, not an empty result)."""
    records = list(read_jsonl_numbered(path))
    if not records:
        raise InputError(f"{path}: no records (the file is empty)")
    return records


def read_lines(path: str | Path, *, expected: str = "a JSONL file") -> list[str]:
    """The lines of a UTF-8 text file, gunzipped when its name ends in ``.gz`` (MultiPL-E's and EvalPlus's files
    often are); InputError naming the file (and the line of a byte that is not UTF-8) for anything else.

    Lines end at LF only, as JSON Lines and ``wc -l`` count them: a bare CR does not start a line (the line
    numbers of errors are the file's own), and CRLF lines keep their CR (JSON reads it as space)."""
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
        pieces = data.decode("utf-8").split("\n")
        return [piece + "\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected {expected}") from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a readable gzip file ({exc.__class__.__name__}: {exc})") from None


def _not_utf8(path: Path) -> InputError:
    """The error naming the line of the first byte that is not UTF-8."""
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return InputError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x})")
    return InputError(f"{path}: not UTF-8 text")


def _is_unicode(record: dict[str, Any]) -> bool:
    """Whether every string in ``record`` can be written as UTF-8 (JSON escapes can make lone surrogates)."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def dumps(record: dict[str, Any]) -> str:
    """One JSONL line (without newline), UTF-8 kept readable."""
    return json.dumps(record, ensure_ascii=False)


def not_regular_file(path: Path) -> str:
    """What ``path`` is when it exists and is not a regular file ("" otherwise): what no writer may replace."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return ""
    if stat.S_ISREG(mode):
        return ""
    kinds = {stat.S_ISLNK: "a symbolic link", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}
    kinds |= {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a named pipe", stat.S_ISSOCK: "a socket"}
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[str]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds, and only if
    ``path`` is a regular file or nothing (InputError otherwise: a device or a link is never replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        kind = not_regular_file(path)
        if kind:
            raise InputError(f"{path}: is {kind}, expected a regular file (it is never replaced)")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write all records atomically; return how many were written."""
    count = 0
    with atomic_writer(path) as handle:
        for record in records:
            handle.write(dumps(record) + "\n")
            count += 1
    return count


class JsonlAppender:
    """Append records one by one, flushed per line, for resumable outputs.

    A crash can leave at most one unterminated last line, which
    ``read_jsonl(..., allow_truncated_tail=True)`` skips; opening an appender first
    truncates such a tail so the file stays valid JSONL.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_truncated_tail(self.path)
        self._handle = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drop_truncated_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    with path.open("r+b") as handle:
        handle.truncate(cut)
