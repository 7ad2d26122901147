"""Where `codequant execute` puts results while programs run: the output file, in input order, as soon as every
earlier record's result is there (only results that finished ahead of an earlier one are held in memory), and
the store (``--store``) in batches."""

from __future__ import annotations

import collections
from typing import IO, Any

from codequant.jsonl import dumps
from codequant.languages import canonical_name

#: Results kept in the store at once.
STORE_BATCH = 200


class ResultSink:
    """Takes (index, result) pairs in any order; writes them to ``handle`` in index order and keeps them in
    ``store`` (a ``codequant.store.Store`` or None). A store that fails is not tried again (``store_error``
    says why): the output file still gets every result."""

    def __init__(self, handle: IO[str], store: Any = None) -> None:
        self.handle = handle
        self.store = store
        self.store_error = ""
        self.counts: collections.Counter[str] = collections.Counter()
        self.written = 0
        self._next = 0
        self._held: dict[int, dict[str, Any]] = {}
        self._unstored: list[dict[str, Any]] = []

    def add(self, index: int, result: dict[str, Any]) -> None:
        self._held[index] = result
        while self._next in self._held:
            self._write(self._held.pop(self._next))
            self._next += 1

    def finish(self) -> None:
        """Write what is still held (results after one that never finished: a stopped run), in input order, and
        store what is left."""
        for index in sorted(self._held):
            self._write(self._held.pop(index))
        self._keep()

    def _write(self, result: dict[str, Any]) -> None:
        self.handle.write(dumps(result) + "\n")
        self.handle.flush()  # on disk as it finishes, not held in a buffer
        self.written += 1
        self.counts[result["status"]] += 1
        if self.store is not None and not self.store_error:
            self._unstored.append({**result, "language": canonical_name(result["language"])})
            if len(self._unstored) >= STORE_BATCH:
                self._keep()

    def _keep(self) -> None:
        if self.store is None or self.store_error or not self._unstored:
            return
        from sqlalchemy.exc import SQLAlchemyError

        from codequant.executions import store_executions

        try:
            store_executions(self.store, self._unstored)
        except SQLAlchemyError as exc:
            self.store_error = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        self._unstored.clear()
