"""The store: its engines, its write gate, and the two ways an operation reaches its data.

`Store.reading()` opens a read and `Store.writing()` a write transaction, each as an operation's
`storage.db.Db`; nothing else in the server opens a session (`tools.core.runner` and
`tools.core.internal` call these). `docs/storage.md` describes the paths.

On SQLite, one file with one writer at a time, a write first passes the store's `WriteGate`:
writes queue in the process, one at a time in arrival order, instead of racing for the file lock
(a race that a big write could make others lose after the busy timeout, as "database is locked").
A write that cannot get its turn in time, or finds the queue full, raises `StoreBusy`; reads never
pass the gate (WAL lets them run beside the writer). The process then needs only two SQLite
connections: the reader's (`storage.reader`) and the writer's (`storage.writer`), each the only
connection of an ordinary SQLAlchemy engine that the ORM's sessions run on (`storage.session`).
PostgreSQL needs no gate: a write is an ORM session's transaction on the asyncpg engine's pool;
operations lock rows (`FOR UPDATE`) where they must, and unique constraints are the final
guarantee on both engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import create_engine, event, orm, pool, text
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from storage.credentials import CredentialCache
from storage.db import Db
from storage.defaults import (
    DEFAULT_MAX_OVERFLOW,
    DEFAULT_POOL_SIZE,
    DEFAULT_WRITE_QUEUE_LIMIT,
    DEFAULT_WRITE_QUEUE_TIMEOUT,
    SQLITE_BUSY_TIMEOUT_MS,
    default_database_url,
)
from storage.errors import StoreBusy, translated
from storage.reader import Reader, sqlite_database
from storage.session import AsyncEngineSession, InlineSession, Session
from storage.writer import Writer

__all__ = [
    "DEFAULT_WRITE_QUEUE_LIMIT",
    "DEFAULT_WRITE_QUEUE_TIMEOUT",
    "Db",
    "Reads",
    "Session",
    "Store",
    "StoreBusy",
    "WriteGate",
    "default_database_url",
    "is_sqlite",
    "open_store",
]

_SQLITE_BUSY_TIMEOUT_MS = SQLITE_BUSY_TIMEOUT_MS
"""The store's busy timeout, read when a store is opened (tests shorten it)."""


class WriteGate:
    """One write transaction at a time, in arrival order, with a bounded queue (SQLite).

    asyncio's lock wakes its waiters first in, first out, so a burst of big writes cannot starve
    a small one that arrived earlier.
    """

    def __init__(
        self,
        *,
        limit: int = DEFAULT_WRITE_QUEUE_LIMIT,
        timeout: float = DEFAULT_WRITE_QUEUE_TIMEOUT,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.limit = limit
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._on_idle = on_idle
        """Called whenever the gate is left free with nobody waiting (a turn ended, or a write
        gave up waiting): the writer keeps its turn across processes only for writes waiting here."""

    @property
    def waiting(self) -> int:
        """How many writes wait for their turn."""
        return self._waiting

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
            self._check_idle()  # a write that gave up waiting may leave the gate idle
        try:
            yield
        finally:
            self._lock.release()
            self._check_idle()

    def _check_idle(self) -> None:
        if self._on_idle is not None and not self._waiting and not self._lock.locked():
            self._on_idle()

    @asynccontextmanager
    async def turn_if_free(self) -> AsyncIterator[bool]:
        """Hold the turn only if no write holds or waits for it (yields whether it was taken):
        for bookkeeping that is better skipped than made to wait."""
        if self._lock.locked() or self._waiting:
            yield False
            return
        async with self.turn():
            yield True


class Reads:
    """`Store.reading()`'s block. A class rather than a generator: the hottest reads (the
    credential check aside, every `whoami`, `get_student`, `get_course`) pass through it, and a
    generator's context manager costs a few microseconds more on each."""

    __slots__ = ("_db",)

    def __init__(self, db: Db) -> None:
        self._db = db

    async def __aenter__(self) -> Db:
        return self._db

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: object
    ) -> None:
        session = self._db.opened_session
        if session is not None:
            await session.close()
        if isinstance(error, SQLAlchemyError):
            with translated():
                raise error


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_engine(connection: Callable[[], Any]) -> Engine:
    """An engine whose only connection is `connection()` (the reader's or the writer's), opened
    on first use. Nothing is reset when a session gives it back: the reader never has a
    transaction, and the writer's are begun and ended by the store (`Store.writing`)."""
    return create_engine(
        "sqlite+pysqlite://", creator=connection, poolclass=pool.StaticPool, pool_reset_on_return=None
    )


class Store:
    """The database: its reads and its write transactions (`reading`, `writing`), each an
    operation's `Db`; on SQLite the write gate."""

    def __init__(
        self,
        url: str,
        *,
        write_queue_limit: int = DEFAULT_WRITE_QUEUE_LIMIT,
        write_queue_timeout: float = DEFAULT_WRITE_QUEUE_TIMEOUT,
        pool_size: int = DEFAULT_POOL_SIZE,
        max_overflow: int = DEFAULT_MAX_OVERFLOW,
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.writer: Writer | None = None
        self._write_engine_ready = False
        """SQLite: the connection every write runs on (`storage.writer`); None on PostgreSQL."""
        self._engines: list[Engine] = []
        """The sync engines under the store (for `statements_seen`)."""
        if self.is_sqlite:
            database = sqlite_database(parsed)
            self._read_engine = _sqlite_engine(lambda: self.reader.sqlite_connection())
            writer = self.writer = Writer(database, busy_timeout_ms=_SQLITE_BUSY_TIMEOUT_MS)
            self._write_engine = _sqlite_engine(writer.sqlite_connection)
            self._async_engine: AsyncEngine | None = None
            self._engines = [self._read_engine, self._write_engine]
            dialect: Dialect = self._read_engine.dialect
            self.write_gate: WriteGate | None = WriteGate(
                limit=write_queue_limit, timeout=write_queue_timeout, on_idle=writer.idle
            )
        else:
            # Per process: `blohko serve --http --workers N` opens N such pools (docs/deploying.md).
            self._async_engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True
            )
            self._engines = [self._async_engine.sync_engine]
            dialect = self._async_engine.dialect
            self.write_gate = None
        self.dialect = dialect
        self.reader = Reader(parsed, dialect, busy_timeout_ms=_SQLITE_BUSY_TIMEOUT_MS)
        self.credentials = CredentialCache(self.reader)
        """The credentials this process verified (`storage.credentials`)."""

    # -- sessions -------------------------------------------------------------------------------

    def _read_session(self) -> Session:
        if self._async_engine is not None:
            return AsyncEngineSession(AsyncSession(self._async_engine, expire_on_commit=False), self.dialect)
        return InlineSession(
            orm.Session(self._read_engine, expire_on_commit=False), self.reader.inline, self.dialect
        )

    def _write_session(self) -> Session:
        """SQLite: a session in the writer's transaction, begun already (`Store.writing`)."""
        assert self.writer is not None, "only SQLite's writes open their session in a begun transaction"
        return InlineSession(
            orm.Session(self._write_engine, expire_on_commit=False), self.writer.inline, self.dialect
        )

    @asynccontextmanager
    async def sessions(self) -> AsyncIterator[Session]:
        """A read session, closed when the block ends: for tests and tools that inspect the store.
        Operations read through `reading()`."""
        session = self._read_session()
        try:
            yield session
        finally:
            await session.close()

    # -- the two ways in ----------------------------------------------------------------------------

    def reading(self) -> Reads:
        """An operation's reads: a `Db` whose session, if it opens one, is closed when the block
        ends. A read the database fails leaves the block as a `storage.errors` exception."""
        return Reads(Db(reader=self.reader, open_session=self._read_session, writes=False))

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Db]:
        """One write transaction as a `Db`, opened once the write's turn has come (SQLite): it
        commits when the block ends, or rolls back whole when the block raises. A write the
        database refuses or fails leaves the block as a `storage.errors` exception."""
        with translated():
            if self.write_gate is None:
                async with self._postgres_transaction() as db:
                    yield db
                return
            async with self.write_gate.turn(), self._sqlite_transaction() as db:
                yield db

    @asynccontextmanager
    async def writing_if_free(self) -> AsyncIterator[Db | None]:
        """A write transaction if one can be had without waiting, else None: for bookkeeping
        writes (such as a key's last use) that must never hold a request up. Raises as `writing`."""
        with translated():
            if self.write_gate is None:
                async with self._postgres_transaction() as db:
                    yield db
                return
            async with self.write_gate.turn_if_free() as free:
                if not free:
                    yield None
                    return
                async with self._sqlite_transaction() as db:
                    yield db

    @asynccontextmanager
    async def _sqlite_transaction(self) -> AsyncIterator[Db]:
        writer = self.writer
        assert writer is not None, "an SQLite store has its writer"
        if not self._write_engine_ready:
            # SQLAlchemy's first connection of an engine sets up its dialect and then rolls back:
            # that must come before the first transaction of ours, not end it.
            with self._write_engine.connect():
                self._write_engine_ready = True
        self.reader.announce("BEGIN IMMEDIATE")
        await writer.begin()
        db = Db(reader=self.reader, open_session=self._write_session, writes=True, connection=writer.inline)
        try:
            yield db
            session = db.opened_session
            if session is not None:
                await session.commit()  # flushes, and commits the writer's transaction
            else:
                writer.commit()
        except BaseException:
            session = db.opened_session
            if session is not None:
                await session.rollback()
            writer.rollback()
            raise
        finally:
            gate = self.write_gate
            writer.end(more_waiting=gate is not None and gate.waiting > 0)
            session = db.opened_session
            if session is not None:
                await session.close()

    @asynccontextmanager
    async def _postgres_transaction(self) -> AsyncIterator[Db]:
        session = self._read_session()  # on PostgreSQL any session may write
        db = Db(reader=self.reader, open_session=lambda: session, writes=True, session=session)
        try:
            await session.begin()
            yield db
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()

    # -- the store as a whole -----------------------------------------------------------------------

    async def ping(self) -> None:
        """One trivial statement on the reader (the health check): raises if the database cannot answer."""
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))

    async def checkpoint(self) -> None:
        """SQLite: move the write-ahead log into the database file and truncate it (after a bulk
        load, so a benchmark or a copy of the file starts from a settled database). Nothing on
        PostgreSQL."""
        if self.writer is None or self.write_gate is None:
            return
        async with self.write_gate.turn():
            inline = self.writer.inline
            await inline.call(inline.connection.execute, "PRAGMA wal_checkpoint(TRUNCATE)")

    @contextmanager
    def statements_seen(self) -> Iterator[list[str]]:
        """The SQL of every statement run on this store inside the block, through the sessions and
        as compiled statements (the statement-count tests and the benchmark's statement counts)."""
        seen: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany) -> None:
            seen.append(statement)

        for engine in self._engines:
            event.listen(engine, "before_cursor_execute", record)
        stop_listening = self.reader.listen(seen.append)
        try:
            yield seen
        finally:
            stop_listening()
            for engine in self._engines:
                event.remove(engine, "before_cursor_execute", record)

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        await self.reader.close()
        if self._async_engine is not None:
            await self._async_engine.dispose()
        else:
            for engine in self._engines:
                engine.dispose()


@asynccontextmanager
async def open_store(
    url: str,
    *,
    write_queue_limit: int = DEFAULT_WRITE_QUEUE_LIMIT,
    write_queue_timeout: float = DEFAULT_WRITE_QUEUE_TIMEOUT,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = DEFAULT_MAX_OVERFLOW,
) -> AsyncIterator[Store]:
    """Open the database at `url` for the lifetime of the context (the write queue's bounds apply
    to SQLite, the pool's to PostgreSQL)."""
    store = Store(
        url,
        write_queue_limit=write_queue_limit,
        write_queue_timeout=write_queue_timeout,
        pool_size=pool_size,
        max_overflow=max_overflow,
    )
    try:
        yield store
    finally:
        await store.close()
