"""The async engine and the session factories: one `Store` per server, one session per operation.

Write operations use `Store.write_sessions`. On SQLite their transaction starts with
`BEGIN IMMEDIATE`, which takes the database's write lock up front: concurrent writers then
queue (up to the busy timeout) and each sees the others' committed work. Without it, pysqlite
runs the reads before a transaction's first write outside any transaction, so a
read-then-write operation can act on a stale read (a lost update, or a duplicate the unique
constraints then refuse); and a deferred `BEGIN` would instead fail at once with "database
is locked" when its read snapshot must be upgraded to a write. Other sessions keep pysqlite's
default behaviour. PostgreSQL needs nothing here: operations lock rows (`FOR UPDATE`) where
they must, and unique constraints are the final guarantee on both engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = ["Store", "default_database_url", "is_sqlite", "open_store"]

_SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE_OPTION = "blohko_write"


def default_database_url() -> str:
    """An SQLite file in the user's data directory, so any working directory finds the same store."""
    from platformdirs import user_data_dir

    path = Path(user_data_dir("blohko", appauthor=False)) / "blohko.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    # On every new connection: SQLite forgets these per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_sqlite(connection) -> None:
    if connection.get_execution_options().get(_WRITE_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@dataclass
class Store:
    """The database: an engine and its session factories (`write_sessions` for write operations)."""

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    write_sessions: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    async def close(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def open_store(url: str) -> AsyncIterator[Store]:
    """Open the database at `url` for the lifetime of the context."""
    engine = _create_engine(url)
    try:
        writer = engine.execution_options(**{_WRITE_OPTION: True})
        yield Store(
            url=url,
            engine=engine,
            sessions=async_sessionmaker(engine, expire_on_commit=False),
            write_sessions=async_sessionmaker(writer, expire_on_commit=False),
        )
    finally:
        await engine.dispose()
