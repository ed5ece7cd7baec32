"""SQLite's writer: the process's one connection for writes, and its transactions.

Writes take turns in the process before they begin (`storage.engine.WriteGate`), so one
`sqlite3` connection serves them all: the ORM's write sessions run on it (the store's write engine
holds it as its only connection), and so do the compiled statements a write makes
(`Db.run`, `Db.rows`), in the same transaction. A transaction begins with `BEGIN IMMEDIATE`,
which takes the database's write lock up front: without it, a read-then-write operation could act
on a stale read, and a deferred `BEGIN` would fail at once with "database is locked" when its
read snapshot had to become a write. Blohko processes on one file take turns before that, on a
file lock beside it (`storage.write_turns`); if another process holds SQLite's lock all the same
(one that is not Blohko's), the `BEGIN` waits for it in a worker thread (`storage.sqlite`). Once
it is taken, no statement of the transaction waits.

On PostgreSQL there is no writer of this kind: a write is a transaction of an ORM session on the
engine's pool, and operations lock rows (`FOR UPDATE`) where they must.
"""

from __future__ import annotations

import sqlite3

from storage.errors import translated_sqlite
from storage.sqlite import InlineConnection, connect
from storage.write_turns import WriteTurns

__all__ = ["Writer"]


class Writer:
    """The writer's connection, opened on first use (the write engine's `creator`), closed with the store."""

    def __init__(self, database: str, *, busy_timeout_ms: int) -> None:
        self._database = database
        self._busy_timeout_ms = busy_timeout_ms
        self._inline: InlineConnection | None = None
        # Across processes, writes take turns on a file lock first (`storage.write_turns`); an
        # in-memory database has one process.
        self._turns = (
            WriteTurns(database, timeout_ms=busy_timeout_ms) if database not in ("", ":memory:") else None
        )

    @property
    def inline(self) -> InlineConnection:
        if self._inline is None:
            connection = connect(self._database, read_only=False)
            self._inline = InlineConnection(connection, busy_timeout_ms=self._busy_timeout_ms)
        return self._inline

    def sqlite_connection(self) -> sqlite3.Connection:
        return self.inline.connection

    async def begin(self) -> None:
        """`BEGIN IMMEDIATE`, waiting up to the busy timeout for another process's lock (`Locked`
        if it stays held). The caller holds the write gate's turn."""
        inline = self.inline
        # A caller cancelled while its `BEGIN` waited in a thread left the thread running, and
        # maybe a transaction begun: wait for it, and leave the connection outside any transaction.
        await inline.settle()
        if inline.connection.in_transaction:
            inline.connection.rollback()
        if self._turns is not None:
            await self._turns.take()
        try:
            await inline.call(inline.connection.execute, "BEGIN IMMEDIATE")
        except BaseException:
            self.end()
            raise

    def end(self, *, more_waiting: bool = False) -> None:
        """The transaction `begin` began is over (committed or rolled back): another process may
        write, unless this process keeps its turn for `more_waiting` writes of its own
        (`storage.write_turns`)."""
        if self._turns is not None:
            self._turns.end_write(more_waiting=more_waiting)

    def idle(self) -> None:
        """No write of this process holds or waits for the write gate: give back a kept turn."""
        if self._turns is not None:
            self._turns.give_back()

    def commit(self) -> None:
        with translated_sqlite():
            self.inline.connection.commit()

    def rollback(self) -> None:
        connection = self.inline.connection
        if connection.in_transaction:
            connection.rollback()

    async def close(self) -> None:
        inline, self._inline = self._inline, None
        if inline is not None:
            await inline.settle()
            inline.close()
        if self._turns is not None:
            self._turns.close()
