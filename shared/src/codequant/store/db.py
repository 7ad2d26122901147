"""Store: engine, sessions and idempotent bulk writes over SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from codequant.errors import InputError, ServiceError
from codequant.store.models import Base
from codequant.text import storable

_CHUNK = 500


class Store:
    """A results store at a SQLAlchemy URL; tables are created on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, pool_pre_ping=True, future=True)
        except (ArgumentError, ImportError) as exc:
            raise InputError(f"store URL {url!r}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create_tables()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _create_tables(self) -> None:
        # Several processes (workers, the API, the CLI) may open a new store at once: create_all checks then
        # creates, so a peer can win the race ("already exists"); a second pass then finds every table.
        for attempt in range(3):
            try:
                Base.metadata.create_all(self.engine)
                return
            except (OperationalError, ProgrammingError, IntegrityError) as exc:
                if "already exists" not in str(exc.orig) or attempt == 2:
                    raise ServiceError(
                        f"cannot open the results store {self.safe_url}: {str(exc.orig).strip()}"
                    ) from None

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block succeeds, rolled back otherwise."""
        with self._sessions() as session, session.begin():
            yield session

    def insert_ignore(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> int:
        """Insert rows whose primary key is new; existing rows are left untouched. Returns rows inserted.

        Text is stored in ``codequant.text.storable`` form (NUL as U+FFFD: PostgreSQL's text cannot hold NUL), on
        every back-end alike."""
        if not rows:
            return 0
        rows = [{k: storable(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows]
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        inserted = 0
        with self.session() as session:
            for start in range(0, len(rows), _CHUNK):
                statement = insert(model).values(list(rows[start : start + _CHUNK])).on_conflict_do_nothing()
                inserted += len(session.execute(statement.returning(*model.__table__.primary_key)).all())
        return inserted

    def existing_keys(self, model: type[Base], keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` already stored in ``model``'s table."""
        keys = list(keys)
        column = model.__table__.c.key
        found: set[str] = set()
        with self.session() as session:
            for start in range(0, len(keys), _CHUNK):
                found.update(session.scalars(select(column).where(column.in_(keys[start : start + _CHUNK]))))
        return found

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while a writer commits; busy_timeout makes concurrent writers wait instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
