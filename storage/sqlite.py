"""The store's two SQLite connections, and how a call on one runs: on the event loop's thread,
unless it must wait for another process's lock.

A process keeps one `sqlite3` connection for its reads and one for its writes (`storage.reader`,
`storage.writer`); SQLAlchemy's sessions and the compiled statements (`storage.statements`) run
on them alike. SQLite answers a call of an open connection in microseconds, so a call runs
inline: a hop to a worker thread and back would cost more CPU than the work. That is safe
because an inline call never waits:

- the connections have no busy timeout: SQLite answers at once, or says the database is locked;
- in this process writes take turns before they begin (`storage.engine.WriteGate`), and WAL
  readers never wait for the writer, so "locked" means another process (a CLI command, a second
  server on the file) holds the lock. Only then does the call go to a worker thread
  (`InlineConnection.call`), to wait there with the busy timeout while the event loop serves
  other requests. While one call waits there, the connection's other calls wait behind it in
  threads too: inline they would block the event loop on the connection's mutex.

A call that failed as locked changed nothing (SQLite takes the lock before it writes), so it is
simply made again. Only the standard library's `sqlite3` is used, through its public API.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from storage.errors import Locked, is_locked

__all__ = ["InlineConnection", "connect", "waiting"]

T = TypeVar("T")


def connect(database: str, *, read_only: bool) -> sqlite3.Connection:
    """A connection to the file `database` as the store uses it: foreign keys on, WAL, no busy
    timeout, no implicit transactions (`isolation_level=None`: the writer begins its own, the
    reader never has one, so each read sees the latest commit)."""
    connection = sqlite3.connect(database, timeout=0, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA foreign_keys=ON")
    # Only when the file is not in WAL mode yet (a new database): setting it again is no change,
    # but needs an exclusive lock, so it would fail while another process writes.
    # (fetchall: a statement left unfinished would hold a read transaction open.)
    if connection.execute("PRAGMA journal_mode").fetchall()[0][0].lower() != "wal":
        connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    # Deleted and overwritten content is zeroed in the file, not left in free space: an erased
    # student's data (`storage.erasure`) must be gone from the file's bytes too, not only from its rows.
    connection.execute("PRAGMA secure_delete=ON")
    if read_only:
        connection.execute("PRAGMA query_only=ON")  # the reader: nothing on it may write
    return connection


def waiting(connection: sqlite3.Connection, busy_timeout_ms: int, call: Callable[[], T]) -> T:
    """`call` (made in a worker thread), waiting up to the busy timeout for the lock."""
    connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    try:
        return call()
    finally:
        connection.execute("PRAGMA busy_timeout=0")


class InlineConnection:
    """One `sqlite3` connection whose calls run inline unless they must wait for a lock."""

    def __init__(self, connection: sqlite3.Connection, *, busy_timeout_ms: int) -> None:
        self.connection = connection
        self.busy_timeout_ms = busy_timeout_ms
        self._waiting = 0
        self._pending: set[asyncio.Future] = set()

    async def call(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)`, whose calls use this connection: inline, or in a worker
        thread while the database is locked by another process. `Locked` if the lock stays held
        past the busy timeout."""
        if not self._waiting:
            try:
                return function(*args, **kwargs)
            except Exception as error:
                if not is_locked(error):
                    raise
        return await self.waited(partial(function, *args, **kwargs))

    async def waited(self, call: Callable[[], T]) -> T:
        """`call` in a worker thread with the busy timeout. Shielded: a cancelled caller must not
        take the connection back (to close it, or to roll it back) while the thread still uses it,
        so `settle` waits for such a call to end."""
        self._waiting += 1
        future = asyncio.ensure_future(
            asyncio.to_thread(waiting, self.connection, self.busy_timeout_ms, call)
        )
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        try:
            return await asyncio.shield(future)
        except Exception as error:
            if not is_locked(error):
                raise
            raise Locked(str(error)) from None
        finally:
            self._waiting -= 1

    async def settle(self) -> None:
        """Wait until no call of a cancelled caller still runs in a worker thread."""
        while self._pending:
            done, _ = await asyncio.wait(set(self._pending))
            for future in done:
                if not future.cancelled():
                    future.exception()  # its failure was its cancelled caller's, and is over

    def close(self) -> None:
        self.connection.close()
