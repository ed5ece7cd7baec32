"""SQLite calls run on the event loop's thread, and wait for another process's lock without
blocking it (`storage/sqlite.py`), on the reader's connection and on the writer's alike.

The other process is a plain `sqlite3` connection of this test holding the lock
(`tests.support.locks`).
"""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import select, text
from sqlmodel import col

from storage.errors import Locked
from storage.sqlite import InlineConnection
from storage.statements import PreparedQuery
from storage.tables import Category
from tests.support.locks import waited_off_the_loop

pytestmark = pytest.mark.sqlite_only

_CATEGORIES = PreparedQuery(select(col(Category.id)).order_by(col(Category.id)))


async def _count_in_a_write(store) -> int:
    async with store.writing() as db:
        return (await db.session.execute(text("SELECT count(*) FROM categories"))).scalar_one()


async def test_a_write_waits_for_another_process_write_lock_in_a_thread_while_the_loop_serves(store):
    count = await waited_off_the_loop(store.url, lambda: _count_in_a_write(store), "BEGIN IMMEDIATE")
    assert count > 0


async def _read_both_ways(store) -> tuple[int, int]:
    async with store.reading() as db:
        compiled = len(await db.rows(_CATEGORIES))
        through_the_orm = len((await db.session.scalars(select(col(Category.id)))).all())
    return compiled, through_the_orm


async def test_a_call_refused_as_locked_waits_in_a_thread_while_the_loop_serves(tmp_path):
    # The store's files are in WAL mode, where a reader is kept out only by rarities (a recovery,
    # an exclusive locking mode taken before it first read); in rollback-journal mode any writer's
    # exclusive lock keeps it out, so the mechanism is shown on such a file.
    path = tmp_path / "journal.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.execute("INSERT INTO t VALUES (1), (2)")
    setup.close()
    inline = InlineConnection(sqlite3.connect(path, timeout=0, check_same_thread=False), busy_timeout_ms=5000)

    async def read() -> list:
        return await inline.call(lambda: inline.connection.execute("SELECT x FROM t").fetchall())

    url = f"sqlite:///{path}"
    assert await waited_off_the_loop(url, read, "BEGIN EXCLUSIVE", "UPDATE t SET x = x") == [(1,), (2,)]
    inline.close()


async def test_a_call_still_locked_after_the_busy_timeout_is_refused_as_locked(tmp_path):
    path = tmp_path / "journal.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x INTEGER)")
    other.execute("BEGIN EXCLUSIVE")
    inline = InlineConnection(sqlite3.connect(path, timeout=0, check_same_thread=False), busy_timeout_ms=100)
    with pytest.raises(Locked):
        await inline.call(lambda: inline.connection.execute("SELECT x FROM t").fetchall())
    other.rollback()
    assert await inline.call(lambda: inline.connection.execute("SELECT x FROM t").fetchall()) == []
    inline.close()
    other.close()


async def test_without_another_process_every_statement_runs_on_the_loop_thread(store):
    loop_thread = threading.get_ident()
    ran_on: list[int] = []

    def note(sql: str) -> None:
        ran_on.append(threading.get_ident())

    store.reader.sqlite_connection().set_trace_callback(note)
    assert store.writer is not None, "an SQLite store writes on its writer"
    store.writer.sqlite_connection().set_trace_callback(note)
    await _read_both_ways(store)
    async with store.writing() as db:
        await db.rows(_CATEGORIES)
        await db.session.execute(
            text(
                "INSERT INTO categories (id, name, slug, icon, \"order\") VALUES ('cat_x', 'X', 'x', 'x', 99)"
            )
        )
        await db.session.execute(text("SELECT count(*) FROM categories"))
    assert len(ran_on) >= 6 and set(ran_on) == {loop_thread}  # no hop to a thread for any of them
