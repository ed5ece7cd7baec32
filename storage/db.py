"""An operation's way to its data: `Db`, the one object handlers hand to storage functions.

The runner (or `tools.core.internal`) opens one for each operation, by its role:

- a **read** (`Store.reading`): ORM reads through `db.session`, a read session opened on first
  use; compiled reads (`db.rows`, `db.first`, `db.raw`) on the reader's connection
  (`storage.reader`). A read that makes only compiled reads opens no session at all.
- a **write** (`Store.writing`): one transaction, committed when the operation ends or rolled back
  whole. ORM reads and writes through `db.session`, opened on first use inside the transaction;
  compiled statements (`db.rows`, `db.run`, `db.run_each`) in the same transaction: on SQLite on
  the writer's connection itself (`storage.writer`), the session's pending changes flushed first
  as its autoflush would; on PostgreSQL through the session. A hot write that makes only compiled
  statements (`update_progress`, `create_thread`) opens no session.

Storage functions take a `Db` and choose between the session and compiled statements; handlers
never see a connection. `docs/storage.md` says which a new storage function should use.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect

from storage.errors import translated_sqlite
from storage.reader import Reader
from storage.session import Session
from storage.sqlite import InlineConnection
from storage.statements import Picker, PreparedQuery, driver_arguments

__all__ = ["Db"]


class Db:
    """One operation's reads, or its write transaction (see the module's docstring)."""

    def __init__(
        self,
        *,
        reader: Reader,
        open_session: Callable[[], Session],
        writes: bool,
        connection: InlineConnection | None = None,
        session: Session | None = None,
    ) -> None:
        self.dialect: Dialect = reader.dialect
        self.writes = writes
        """Whether this is a write transaction (compiled statements run in it, not on the reader)."""
        self._reader = reader
        self._open_session = open_session
        self._session = session
        """Opened on first use; PostgreSQL's write is its session's transaction, so it has one from the start."""
        self._connection = connection
        """SQLite's write: the writer's connection, where compiled statements run."""

    @property
    def session(self) -> Session:
        """The operation's ORM session, opened on first use (in a write, inside its transaction)."""
        session = self._session
        if session is None:
            session = self._session = self._open_session()
        return session

    @property
    def opened_session(self) -> Session | None:
        """The session, if one was opened (the store commits and closes it)."""
        return self._session

    async def rows(self, query: PreparedQuery, /, **params: Any) -> list[dict[str, Any]]:
        """Every row of `query`, each a dict of its columns: in a write, in its transaction."""
        if not self.writes:
            return await self._reader.rows(query, **params)
        connection = self._connection
        if connection is None:  # PostgreSQL: the session runs it
            result = await self.session.execute(query.statement, params)
            return [dict(row._mapping) for row in result.all()]
        fetched = await self._on_the_writer(connection, _fetch_all, query, params)
        every_column = query.picker(self.dialect, None)
        return [every_column(row) for row in fetched]

    async def first(self, query: PreparedQuery, /, **params: Any) -> dict[str, Any] | None:
        """The first row of `query` (as `rows`), or None."""
        found = await self.rows(query, **params)
        return found[0] if found else None

    async def raw(self, query: PreparedQuery, /, **params: Any) -> list[Any]:
        """A read's rows of `query` as the driver returns them, unprocessed: for a statement whose
        rows repeat columns (a join), which `picker` then takes out only where they are needed."""
        if self.writes:
            raise RuntimeError("raw rows are a read's: a write reads through rows() or first()")
        return await self._reader.raw(query, **params)

    def picker(self, query: PreparedQuery, columns: tuple[tuple[str, str], ...]) -> Picker:
        """What takes `columns` ((label, key), ...) of a raw row of `query` out, processed as `rows` would."""
        return query.picker(self.dialect, columns)

    async def run(self, query: PreparedQuery, /, **params: Any) -> None:
        """Run `query` (an insert, update or delete whose rows, if any, are not needed)."""
        connection = self._writer()
        if connection is None:  # PostgreSQL: the session runs it
            await self.session.execute(query.statement, params)
            return
        await self._on_the_writer(connection, _execute, query, params)

    async def run_each(self, query: PreparedQuery, param_sets: Sequence[Mapping[str, Any]], /) -> None:
        """Run `query` once for each of `param_sets`, in one call to the driver (executemany)."""
        if not param_sets:
            return
        connection = self._writer()
        if connection is None:  # PostgreSQL: the session runs it
            await self.session.execute(query.statement, list(param_sets))
            return
        session = self._session
        if session is not None and session.has_pending:
            await session.flush()
        compiled = query.compiled(self.dialect)
        arguments = [driver_arguments(compiled, params) for params in param_sets]
        self._reader.announce(compiled.sql)
        with translated_sqlite():
            await connection.call(connection.connection.executemany, compiled.sql, arguments)

    def _writer(self) -> InlineConnection | None:
        """SQLite's writer connection (None on PostgreSQL, where the session runs every
        statement); refuses in a read."""
        if not self.writes:
            raise RuntimeError("a read writes nothing: this statement belongs in a write")
        return self._connection

    async def _on_the_writer(
        self,
        connection: InlineConnection,
        run: Callable[[sqlite3.Connection, str, list[Any]], Any],
        query: PreparedQuery,
        params: Mapping[str, Any],
    ) -> Any:
        """`query` on SQLite's writer connection, after the session's pending changes are flushed
        (as its autoflush would before a statement of its own)."""
        session = self._session
        if session is not None and session.has_pending:
            await session.flush()
        compiled = query.compiled(self.dialect)
        values = driver_arguments(compiled, params)
        self._reader.announce(compiled.sql)
        with translated_sqlite():  # a statement's later rows can fail too
            return await connection.call(run, connection.connection, compiled.sql, values)


def _fetch_all(connection: sqlite3.Connection, sql: str, values: list[Any]) -> list[Any]:
    return connection.execute(sql, values).fetchall()


def _execute(connection: sqlite3.Connection, sql: str, values: list[Any]) -> None:
    connection.execute(sql, values)
