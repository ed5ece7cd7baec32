"""SQLite calls on the event loop's thread unless they must wait for another process's lock.

`aiosqlite` runs every call of a connection (a cursor, an execute, a fetch, a close) in the
connection's own thread and wakes the event loop with the result: two thread switches and a
self-pipe write for work that takes SQLite microseconds, and a write makes dozens of such calls.
Here a call runs inline instead:

- the connection has no busy timeout, so an inline call never waits: SQLite answers at once
  or says the database is locked;
- in this process writes already take turns before they begin (`storage.engine.WriteGate`) and
  WAL readers never wait for the writer, so "locked" means another process (a CLI command, a
  second server on the file) holds the write lock. Only then does the call go to the
  connection's thread, as `aiosqlite` would send it, to wait there with the busy timeout while
  the event loop serves other requests.

A call that failed as locked changed nothing (SQLite takes the lock before it writes), so it is
simply made again. SQLAlchemy sees an ordinary `aiosqlite` connection (`async_creator`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite

from storage.errors import is_locked

__all__ = ["connect", "waiting"]


def waiting(connection: sqlite3.Connection, busy_timeout_ms: int, call: Callable[[], Any]) -> Any:
    """`call`, in the connection's thread, waiting up to the busy timeout for the lock."""
    connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    try:
        return call()
    finally:
        connection.execute("PRAGMA busy_timeout=0")


class _InlineConnection(aiosqlite.Connection):
    busy_timeout_ms: int = 0

    @property
    def sqlite3_connection(self) -> sqlite3.Connection:
        """The `sqlite3` connection itself, for statements run inline beside SQLAlchemy's
        (`storage.direct`): never while a call of this connection waits in its thread."""
        assert self._connection is not None, "asked for by a session's transaction: the connection is open"
        return self._connection

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        call = partial(fn, *args, **kwargs)
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not is_locked(error):
                raise
        return await super()._execute(waiting, self._connection, self.busy_timeout_ms, call)


async def connect(database: str, *, busy_timeout_ms: int) -> aiosqlite.Connection:
    """An `aiosqlite` connection to `database` whose calls run inline unless they must wait for
    another process's lock (then in its thread, for up to `busy_timeout_ms`)."""
    connector = partial(sqlite3.connect, database, timeout=0, check_same_thread=False)
    connection = _InlineConnection(connector, iter_chunk_size=64)
    connection.busy_timeout_ms = busy_timeout_ms
    connection._thread.daemon = True  # as SQLAlchemy's aiosqlite dialect does: never hold the process up
    return await connection
