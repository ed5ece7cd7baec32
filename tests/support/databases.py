"""Test databases on either engine.

The suite runs once per engine: SQLite by default, PostgreSQL when `BLOHKO_TEST_ENGINE=postgresql`
and `BLOHKO_TEST_POSTGRES_URL` names a server (an `postgresql+asyncpg://` URL of any database the
user may `CREATE DATABASE` from). Every database the run creates is dropped at its end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import asyncpg
from sqlalchemy import Connection, NullPool, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

__all__ = [
    "ENGINE",
    "POSTGRES_URL",
    "DatabaseFactory",
    "RawConnection",
    "empty_tables",
    "raw_connection",
    "run_in_own_thread",
    "sqlite_path",
]

T = TypeVar("T")

ENGINE = os.environ.get("BLOHKO_TEST_ENGINE", "sqlite")
POSTGRES_URL = os.environ.get("BLOHKO_TEST_POSTGRES_URL")

if ENGINE not in ("sqlite", "postgresql"):
    raise RuntimeError(f"BLOHKO_TEST_ENGINE must be sqlite or postgresql, not {ENGINE!r}")
if ENGINE == "postgresql" and not POSTGRES_URL:
    raise RuntimeError("BLOHKO_TEST_ENGINE=postgresql needs BLOHKO_TEST_POSTGRES_URL")


def sqlite_path(url: str) -> str:
    """The file an SQLite database URL names."""
    path = make_url(url).database
    assert path is not None, f"{url} names no SQLite file"
    return path


def run_in_own_thread(function, *args):
    """Run an async function to completion on a fresh event loop in a worker thread, so that
    sync and async tests alike can call it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, function, *args).result()


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class DatabaseFactory:
    """Makes empty databases for one test run and drops the PostgreSQL ones at its end."""

    def __init__(self, directory: Path, engine: str = ENGINE) -> None:
        self.directory = directory
        self.engine = engine
        self._created: list[str] = []

    def new(self, label: str = "db") -> str:
        """The URL of a new, empty database."""
        if self.engine == "sqlite":
            return f"sqlite:///{self.directory / f'{label}-{secrets.token_hex(4)}.db'}"
        name = f"blohko_test_{label}_{secrets.token_hex(4)}".lower()
        run_in_own_thread(self._execute, f'CREATE DATABASE "{name}"')
        self._created.append(name)
        assert POSTGRES_URL is not None  # the engine is PostgreSQL, which needs it (checked at import)
        return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        for name in self._created:
            run_in_own_thread(self._execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.clear()

    async def _execute(self, statement: str) -> None:
        assert POSTGRES_URL is not None  # only the PostgreSQL engine makes databases with statements
        connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()


# Rows the migrations seed (reference data, the credential revision): kept between tests.
_SEEDED_TABLES = {"alembic_version", "categories", "credential_revision"}


async def empty_tables(url: str) -> None:
    """Delete every row but the seeded reference data, in one transaction. DELETE rather than
    TRUNCATE: on the few rows a test leaves, DELETE is far cheaper than TRUNCATE (which makes new
    files for every table), and it runs before each of several hundred tests."""
    from storage.tables import metadata

    tables = [table.name for table in reversed(metadata.sorted_tables) if table.name not in _SEEDED_TABLES]
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        # One simple-protocol query: its statements run in one implicit transaction.
        await connection.execute("; ".join(f'DELETE FROM "{name}"' for name in tables))
    finally:
        await connection.close()


def _check(url: str) -> bool:
    async def ping() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
        await connection.close()

    try:
        anyio.run(ping)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)}: {exc}")
        return False
    return True


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "--check":
        sys.exit("usage: python -m tests.support.databases --check POSTGRES_URL")
    sys.exit(0 if _check(sys.argv[2]) else 1)


class RawConnection:
    """A SQLAlchemy Core connection to a test database, outside any store: for statements the store
    would refuse or translate (rows that break a constraint, schema inspection). Its errors are
    SQLAlchemy's own (`IntegrityError`, ...). On SQLite a blocking connection through `sqlite3`,
    on PostgreSQL an async one."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def execute(self, statement: Any, params: Any = None) -> Any:
        if isinstance(self._connection, AsyncConnection):
            return await self._connection.execute(statement, params)
        return self._connection.execute(statement, params)

    async def exec_driver_sql(self, sql: str) -> Any:
        if isinstance(self._connection, AsyncConnection):
            return await self._connection.exec_driver_sql(sql)
        return self._connection.exec_driver_sql(sql)

    async def run_sync(self, function: Callable[[Connection], T]) -> T:
        """`function(connection)` on the blocking connection (schema inspection, Alembic)."""
        if isinstance(self._connection, AsyncConnection):
            return await self._connection.run_sync(function)
        return function(self._connection)


@asynccontextmanager
async def raw_connection(url: str, *, commit: bool = True) -> AsyncIterator[RawConnection]:
    """One transaction on a `RawConnection` to the database at `url`: committed when the block ends
    (`commit=False`, or an exception: rolled back)."""
    from storage.migrate import migration_url

    url = migration_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, poolclass=NullPool)
        # As the store's connections have it (`storage.sqlite.connect`): cascades and references hold.
        event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA foreign_keys=ON"))
        try:
            with engine.connect() as connection:
                connection.begin()
                yield RawConnection(connection)
                if commit:
                    connection.commit()
                else:
                    connection.rollback()
        finally:
            engine.dispose()
        return
    async_engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with async_engine.connect() as async_connection:
            await async_connection.begin()
            yield RawConnection(async_connection)
            if commit:
                await async_connection.commit()
            else:
                await async_connection.rollback()
    finally:
        await async_engine.dispose()
