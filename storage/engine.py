"""The async engine and the session factories: one `Store` per server, one session per operation.

Write operations use `Store.write_session()`. On SQLite, one file with one writer at a time,
writes first pass the store's `WriteGate`: they queue in the process, one at a time in arrival
order, instead of racing for the file lock (a race that a big write could make others lose after
the busy timeout, as "database is locked"). A write that cannot get its turn in time, or finds
the queue full, raises `StoreBusy`; reads never pass the gate (WAL lets them run beside the writer).

Write sessions On SQLite their transaction starts with
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

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import sqlite_inline
from storage.credentials import CredentialCache
from storage.defaults import (
    DEFAULT_WRITE_QUEUE_LIMIT,
    DEFAULT_WRITE_QUEUE_TIMEOUT,
    SQLITE_BUSY_TIMEOUT_MS,
    default_database_url,
)
from storage.direct import FAST_READER_INFO, DirectWriter, Transaction
from storage.errors import StoreBusy, translated
from storage.fast import FastReader, sqlite_database

__all__ = [
    "DEFAULT_WRITE_QUEUE_LIMIT",
    "DEFAULT_WRITE_QUEUE_TIMEOUT",
    "Session",
    "Store",
    "StoreBusy",
    "WriteGate",
    "default_database_url",
    "is_sqlite",
    "open_store",
]

_SQLITE_BUSY_TIMEOUT_MS = SQLITE_BUSY_TIMEOUT_MS
"""The store's busy timeout, read when an engine is made (tests shorten it)."""
_WRITE_OPTION = "blohko_write"


class Session(AsyncSession):
    """The session an operation reads and writes through: SQLAlchemy's `AsyncSession`, except
    that `flush()` raises `storage.errors` exceptions (a write's duplicate is a
    `ConstraintViolation` naming the constraint), so operations handle none of SQLAlchemy's."""

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        with translated():
            await super().flush(objects)


class WriteGate:
    """One write transaction at a time, in arrival order, with a bounded queue (SQLite).

    asyncio's lock wakes its waiters first in, first out, so a burst of big writes cannot starve
    a small one that arrived earlier.
    """

    def __init__(
        self, *, limit: int = DEFAULT_WRITE_QUEUE_LIMIT, timeout: float = DEFAULT_WRITE_QUEUE_TIMEOUT
    ) -> None:
        self.limit = limit
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._waiting = 0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for this write's turn and hold it for the block; `StoreBusy` if it does not come."""
        if self._waiting >= self.limit:
            raise StoreBusy(f"{self._waiting} writes are already waiting", retry_after=1)
        self._waiting += 1
        try:
            async with asyncio.timeout(self.timeout):
                await self._lock.acquire()
        except TimeoutError:
            retry_after = max(1, round(self.timeout / 10))
            raise StoreBusy(f"no turn to write within {self.timeout:g} s", retry_after=retry_after) from None
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    @asynccontextmanager
    async def turn_if_free(self) -> AsyncIterator[bool]:
        """Hold the turn only if no write holds or waits for it (yields whether it was taken):
        for bookkeeping that is better skipped than made to wait."""
        if self._lock.locked() or self._waiting:
            yield False
            return
        async with self.turn():
            yield True


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _set_sqlite_pragmas(dbapi_connection, _record=None) -> None:
    # On every new connection: SQLite forgets these per connection. (No busy timeout: a call
    # that must wait for the lock waits in the connection's thread, `storage.sqlite_inline`.)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # Only when the file is not in WAL mode yet (a new database): setting it again is no change,
    # but needs an exclusive lock, so it would fail while another process writes.
    cursor.execute("PRAGMA journal_mode")
    if cursor.fetchone()[0].lower() != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_sqlite(connection) -> None:
    if connection.get_execution_options().get(_WRITE_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        connect = partial(
            sqlite_inline.connect, sqlite_database(make_url(url)), busy_timeout_ms=_SQLITE_BUSY_TIMEOUT_MS
        )
        engine = create_async_engine(url, async_creator=connect)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@dataclass
class Store:
    """The database: an engine, its session factories, and on SQLite the write gate.

    Reads use `sessions()`; every write transaction uses `write_session()`.
    """

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[Session]
    ungated_write_sessions: async_sessionmaker[Session]
    """Write sessions without the gate: only `write_session` and `write_session_if_free` use them."""
    fast: FastReader
    """Hot single-statement reads on a connection outside the pool (`storage.fast`)."""
    credentials: CredentialCache
    """The credentials this process verified (`storage.credentials`)."""
    write_gate: WriteGate | None = field(default=None)
    direct: DirectWriter | None = field(default=None)
    """SQLite: the connection that write transactions without a session run on (`storage.direct`)."""

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[Session]:
        """A session for one write transaction, opened once the write's turn has come (SQLite).
        A write the database refuses or fails leaves the block as a `storage.errors` exception."""
        with translated():
            async with (
                self.write_gate.turn() if self.write_gate else nullcontext(),
                self.ungated_write_sessions() as session,
            ):
                yield session

    @asynccontextmanager
    async def direct_transaction(self) -> AsyncIterator[Transaction]:
        """A write transaction without a session (SQLite only: `storage.direct`), once the write's
        turn has come. Raises as `write_session`."""
        if self.direct is None or self.write_gate is None:
            raise RuntimeError("only an SQLite store writes without a session")
        with translated():
            async with self.write_gate.turn(), self.direct.transaction() as transaction:
                yield transaction

    @asynccontextmanager
    async def write_session_if_free(self) -> AsyncIterator[Session | None]:
        """A write session if one can be had without waiting, else None: for bookkeeping writes
        (such as a key's last use) that must never hold a request up. Raises as `write_session`."""
        with translated():
            if self.write_gate is None:
                async with self.ungated_write_sessions() as session:
                    yield session
                return
            async with self.write_gate.turn_if_free() as free:
                if not free:
                    yield None
                    return
                async with self.ungated_write_sessions() as session:
                    yield session

    @contextmanager
    def statements_seen(self) -> Iterator[list[str]]:
        """The SQL of every statement run on this store inside the block, on the engine and on the
        fast reader (the statement-count tests and the benchmark's statement counts)."""
        seen: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany) -> None:
            seen.append(statement)

        event.listen(self.engine.sync_engine, "before_cursor_execute", record)
        stop_listening = self.fast.listen(seen.append)
        try:
            yield seen
        finally:
            stop_listening()
            event.remove(self.engine.sync_engine, "before_cursor_execute", record)

    async def close(self) -> None:
        if self.direct is not None:
            self.direct.close()
        await self.fast.close()
        await self.engine.dispose()


@asynccontextmanager
async def open_store(
    url: str,
    *,
    write_queue_limit: int = DEFAULT_WRITE_QUEUE_LIMIT,
    write_queue_timeout: float = DEFAULT_WRITE_QUEUE_TIMEOUT,
) -> AsyncIterator[Store]:
    """Open the database at `url` for the lifetime of the context (the write queue's bounds apply to SQLite)."""
    engine = _create_engine(url)
    fast = FastReader(url, engine.dialect)
    direct = None
    if is_sqlite(url):
        direct = DirectWriter(
            sqlite_database(make_url(url)),
            engine,
            prepare=_set_sqlite_pragmas,
            busy_timeout_ms=_SQLITE_BUSY_TIMEOUT_MS,
            reader=fast,
        )
    try:
        writer = engine.execution_options(**{_WRITE_OPTION: True})
        info = {FAST_READER_INFO: fast}  # `storage.direct` announces its statements there
        yield Store(
            url=url,
            engine=engine,
            sessions=async_sessionmaker(engine, class_=Session, expire_on_commit=False, info=info),
            ungated_write_sessions=async_sessionmaker(
                writer, class_=Session, expire_on_commit=False, info=info
            ),
            write_gate=WriteGate(limit=write_queue_limit, timeout=write_queue_timeout)
            if is_sqlite(url)
            else None,
            fast=fast,
            credentials=CredentialCache(fast),
            direct=direct,
        )
    finally:
        if direct is not None:
            direct.close()
        await fast.close()
        await engine.dispose()
