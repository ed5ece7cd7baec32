"""A write transaction's own statements, run on its connection's driver itself (SQLite).

On the hot writes (`update_progress`, `create_thread`) SQLAlchemy's machinery around each
statement costs several times SQLite's own work: the session's `execute`, the connection, the
compiled cache, the result, a greenlet switch per await. The statements the hot writes make
(their reads, their inserts and updates, the audit record, the events) are
`fast.PreparedQuery`s instead, compiled once per dialect with SQLAlchemy's own type processing,
and on SQLite each runs on the `sqlite3` connection of the session's transaction: the same
connection and the same transaction (`BEGIN IMMEDIATE`, taken when the session began), so what
they write commits or rolls back with everything else the operation did, and each call runs
inline on the event loop's thread as `storage.sqlite_inline` runs the session's own.

- The session's pending ORM changes are flushed first, as its autoflush would before a statement.
- A refusal is a `storage.errors` exception (`translated_sqlite`), as from the session.
- No column defaults are applied: an insert gives every column (`fast.driver_arguments` names a
  missing one).

The hottest writes need no session at all (`Operation.fast_write`): on SQLite the runner gives
them a `Transaction` on the store's own writer connection (`DirectWriter`) instead, and the
same functions run their statements there: the session's begin, connection checkout and commit
would cost about as much again as the statements.

On PostgreSQL the same `PreparedQuery`s go through the session. (SQLAlchemy's asyncpg adapter
begins its transaction lazily, inside its own connection wrapper; running beside it would mean
relying on that wrapper's internals.)
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage.errors import Locked, is_locked, translated_sqlite
from storage.fast import FastReader, PreparedQuery, driver_arguments
from storage.sqlite_inline import waiting

__all__ = ["FAST_READER_INFO", "DirectWriter", "Transaction", "first", "rows", "run", "run_each"]

FAST_READER_INFO = "blohko_fast_reader"
"""The key of the store's `FastReader` in its sessions' `info`: statements run here are
announced to its listeners (`Store.statements_seen`)."""
_KEPT = "blohko_direct_connection"


class Transaction:
    """A write transaction on the store's writer connection (SQLite), where an operation that
    needs no session (`Operation.fast_write`) runs: the functions of this module take it where
    they take a session."""

    def __init__(self, connection: sqlite3.Connection, engine: AsyncEngine, info: dict[str, Any]) -> None:
        self.connection = connection
        self.bind = engine
        """The store's engine, as a session's `bind`: what the storage functions ask the dialect of."""
        self.info = info


class DirectWriter:
    """The store's own `sqlite3` connection for `Transaction`s, opened on first use. Writes take
    turns in this process before they begin (`storage.engine.WriteGate`), so one connection
    serves them all; like the store's others it runs inline on the event loop's thread, and only
    waits (in a worker thread) while another process holds the database's write lock."""

    def __init__(
        self,
        database: str,
        engine: AsyncEngine,
        *,
        prepare: Callable[[sqlite3.Connection], None],
        busy_timeout_ms: int,
        reader: FastReader,
    ) -> None:
        self._database = database
        self._engine = engine
        self._prepare = prepare
        self._busy_timeout_ms = busy_timeout_ms
        self._reader = reader
        self._connection: sqlite3.Connection | None = None
        self._waiting: asyncio.Future | None = None
        """A wait for another process's lock, in a worker thread, that may outlive its caller."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One transaction, `BEGIN IMMEDIATE` to `COMMIT`; rolled back whole if the block raises
        (a cancellation included) or the commit fails. The caller holds the write gate's turn."""
        connection = self._connection or self._open()
        await self._settle(connection)
        await self._begin(connection)
        try:
            yield Transaction(connection, self._engine, {FAST_READER_INFO: self._reader})
            with translated_sqlite():
                connection.commit()
        except BaseException:
            if connection.in_transaction:
                connection.rollback()
            raise

    async def _settle(self, connection: sqlite3.Connection) -> None:
        """Leave the connection free and outside any transaction: a caller cancelled while its
        `BEGIN` waited in a thread left the thread running, and maybe a transaction begun."""
        if self._waiting is not None:
            await asyncio.wait({self._waiting})
            self._waiting.exception()  # its failure was its cancelled caller's, and is over
            self._waiting = None
        if connection.in_transaction:
            connection.rollback()

    async def _begin(self, connection: sqlite3.Connection) -> None:
        self._reader.announce("BEGIN IMMEDIATE")
        begin = partial(connection.execute, "BEGIN IMMEDIATE")
        try:
            begin()
            return
        except sqlite3.OperationalError as error:
            if not is_locked(error):
                raise
        # Another process writes: wait for its lock off the event loop's thread. Shielded: a
        # cancelled caller must not take the connection back while the thread still uses it.
        self._waiting = asyncio.ensure_future(
            asyncio.to_thread(waiting, connection, self._busy_timeout_ms, begin)
        )
        try:
            await asyncio.shield(self._waiting)
        except sqlite3.OperationalError as error:
            if not is_locked(error):
                raise
            raise Locked(str(error)) from None
        self._waiting = None

    def _open(self) -> sqlite3.Connection:
        # isolation_level None: the transactions are the explicit ones above.
        connection = sqlite3.connect(self._database, timeout=0, isolation_level=None, check_same_thread=False)
        self._prepare(connection)
        self._connection = connection
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


async def rows(
    session: AsyncSession | Transaction, query: PreparedQuery, /, **params: Any
) -> list[dict[str, Any]]:
    """Every row of `query` in the session's transaction, each a dict of its columns."""
    connection = await _sqlite_connection(session)
    if connection is None:
        assert isinstance(session, AsyncSession), "a Transaction has its connection"
        return [dict(row._mapping) for row in (await session.execute(query.statement, params)).all()]
    bind = session.bind
    assert bind is not None, "the store's sessions are bound to its engine"
    every_column = query.picker(bind.dialect, None)
    with translated_sqlite():  # a statement's later rows can fail too
        fetched = _execute(session, connection, query, params).fetchall()
    return [every_column(row) for row in fetched]


async def first(
    session: AsyncSession | Transaction, query: PreparedQuery, /, **params: Any
) -> dict[str, Any] | None:
    """The first row of `query` (as `rows`), or None."""
    found = await rows(session, query, **params)
    return found[0] if found else None


async def run(session: AsyncSession | Transaction, query: PreparedQuery, /, **params: Any) -> None:
    """Run `query` (an insert, update or delete whose rows, if any, are not needed)."""
    connection = await _sqlite_connection(session)
    if connection is None:
        assert isinstance(session, AsyncSession), "a Transaction has its connection"
        await session.execute(query.statement, params)
        return
    _execute(session, connection, query, params)


async def run_each(
    session: AsyncSession | Transaction, query: PreparedQuery, param_sets: Sequence[Mapping[str, Any]], /
) -> None:
    """Run `query` once for each of `param_sets`, in one call to the driver (executemany)."""
    if not param_sets:
        return
    connection = await _sqlite_connection(session)
    if connection is None:
        assert isinstance(session, AsyncSession), "a Transaction has its connection"
        await session.execute(query.statement, list(param_sets))
        return
    bind = session.bind
    assert bind is not None, "the store's sessions are bound to its engine"
    compiled = query.compiled(bind.dialect)
    _announce(session, compiled.sql)
    with translated_sqlite():
        connection.executemany(compiled.sql, [driver_arguments(compiled, params) for params in param_sets])


def _execute(
    session: AsyncSession | Transaction,
    connection: sqlite3.Connection,
    query: PreparedQuery,
    params: Mapping[str, Any],
) -> sqlite3.Cursor:
    bind = session.bind
    assert bind is not None, "the store's sessions are bound to its engine"
    compiled = query.compiled(bind.dialect)
    values = driver_arguments(compiled, params)
    _announce(session, compiled.sql)
    with translated_sqlite():
        return connection.execute(compiled.sql, values)


def _announce(session: AsyncSession | Transaction, sql: str) -> None:
    reader: FastReader | None = session.info.get(FAST_READER_INFO)
    if reader is not None:
        reader.announce(sql)


async def _sqlite_connection(session: AsyncSession | Transaction) -> sqlite3.Connection | None:
    """The `sqlite3` connection of the session's transaction (None on PostgreSQL), its pending
    changes flushed."""
    if isinstance(session, Transaction):
        return session.connection
    bind = session.bind
    assert bind is not None, "the store's sessions are bound to its engine"
    if bind.dialect.name != "sqlite":
        return None
    sync = session.sync_session
    if sync.new or sync.dirty or sync.deleted:
        await session.flush()
    transaction = sync.get_transaction()
    kept = sync.info.get(_KEPT)
    if kept is not None and transaction is not None and kept[0] is transaction:
        return kept[1]
    # Asking for the session's connection begins its transaction if it had not begun.
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None, "the session's connection is checked out, so it has its driver's"
    connection = driver.sqlite3_connection
    sync.info[_KEPT] = (sync.get_transaction(), connection)
    return connection
