"""The store's reads: compiled statements on the reader's own connection, beside the ORM's read sessions.

On SQLite the process reads through one `sqlite3` connection (`storage.sqlite`): the ORM's read
sessions run on it (the store's read engine holds it as its only connection), and so do the
compiled reads (`storage.statements.PreparedQuery`) that `Db.rows` and `Db.raw` make in a read.
It never has a transaction (`isolation_level=None`, `query_only`), so each statement sees what was
committed, by any connection or process, before it started; in WAL mode it never waits for a
writer. On PostgreSQL the compiled reads go to a small `asyncpg` pool of the reader's own (a read
through SQLAlchemy's pool, connection and result would cost several times the statement), and the
read sessions to the engine's pool.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL, Dialect

from storage.sqlite import InlineConnection, connect
from storage.statements import Picker, PreparedQuery, driver_arguments

__all__ = ["Reader", "sqlite_database"]


def sqlite_database(url: URL) -> str:
    """The database an SQLite URL names: its file's path (`sqlite:///path/to/blohko.db`)."""
    if url.database is None:
        raise ValueError(f"the SQLite URL {url} names no database file")
    return url.database


async def _decode_json(connection: Any) -> None:
    # SQLAlchemy's asyncpg dialect decodes JSON with a codec set on each connection (its JSON type
    # has no result processor); a connection of our own needs the same codecs.
    import json

    for name in ("json", "jsonb"):
        await connection.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def _fetch_all(connection: sqlite3.Connection, sql: str, arguments: list[Any]) -> list[Any]:
    return connection.execute(sql, arguments).fetchall()


class Reader:
    """The reader's connection (opened on first use, closed with the store) and its compiled reads.
    Also tells listeners of every compiled statement run, here or in a write (`announce`)."""

    def __init__(self, url: URL, dialect: Dialect, *, busy_timeout_ms: int) -> None:
        self._url = url
        self.dialect = dialect
        self._sqlite = url.get_backend_name() == "sqlite"
        self._busy_timeout_ms = busy_timeout_ms
        self._inline: InlineConnection | None = None
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._listeners: list[Callable[[str], None]] = []

    @property
    def inline(self) -> InlineConnection:
        """SQLite: the reader's connection, opened on first use (the read engine's `creator`)."""
        if self._inline is None:
            connection = connect(sqlite_database(self._url), read_only=True)
            self._inline = InlineConnection(connection, busy_timeout_ms=self._busy_timeout_ms)
        return self._inline

    def sqlite_connection(self) -> sqlite3.Connection:
        return self.inline.connection

    def listen(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call `listener` with the SQL of every compiled statement run, until the returned
        function is called (the statement-count tests, beside SQLAlchemy's `before_cursor_execute`)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def announce(self, sql: str) -> None:
        """Tell the listeners a compiled statement runs: here, or in a write (`storage.db`)."""
        for listener in self._listeners:
            listener(sql)

    async def first(self, query: PreparedQuery, **params: Any) -> dict[str, Any] | None:
        rows = await self.rows(query, **params)
        return rows[0] if rows else None

    async def rows(self, query: PreparedQuery, **params: Any) -> list[dict[str, Any]]:
        every_column = query.picker(self.dialect, None)
        return [every_column(row) for row in await self.raw(query, **params)]

    async def raw(self, query: PreparedQuery, **params: Any) -> list[Any]:
        """The rows of `query` as the driver returns them, unprocessed (`Db.raw`)."""
        compiled = query.compiled(self.dialect)
        values = driver_arguments(compiled, params)
        self.announce(compiled.sql)
        if self._sqlite:
            inline = self.inline
            return await inline.call(_fetch_all, inline.connection, compiled.sql, values)
        pool = self._pool or await self._open_postgres()
        return await pool.fetch(compiled.sql, *values)

    def picker(self, query: PreparedQuery, columns: tuple[tuple[str, str], ...]) -> Picker:
        return query.picker(self.dialect, columns)

    async def _open_postgres(self) -> Any:
        async with self._opening:
            if self._pool is None:
                import asyncpg

                dsn = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
                # Small: each statement holds a connection only for its own round trip.
                self._pool = await asyncpg.create_pool(dsn, min_size=1, max_size=5, init=_decode_json)
            return self._pool

    async def close(self) -> None:
        inline, self._inline = self._inline, None
        if inline is not None:
            await inline.settle()
            inline.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
