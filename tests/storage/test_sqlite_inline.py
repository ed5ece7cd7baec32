"""SQLite calls run on the event loop's thread, and wait for another process's lock without
blocking it (`storage/sqlite_inline.py`, `storage/fast.py`).

The other process is a plain `sqlite3` connection of this test holding the lock
(`tests.support.locks`).
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text
from sqlmodel import col

from storage.fast import PreparedQuery
from storage.tables import Category
from tests.support.locks import waited_off_the_loop

pytestmark = pytest.mark.sqlite_only

_CATEGORIES = PreparedQuery(select(col(Category.id)).order_by(col(Category.id)))


async def _count_in_a_write(store) -> int:
    async with store.write_session() as session, session.begin():
        return (await session.execute(text("SELECT count(*) FROM categories"))).scalar_one()


async def test_a_write_waits_for_another_process_write_lock_in_a_thread_while_the_loop_serves(store):
    count = await waited_off_the_loop(store.url, lambda: _count_in_a_write(store), "BEGIN IMMEDIATE")
    assert count > 0


async def test_a_fast_read_waits_for_an_exclusive_lock_in_a_thread_while_the_loop_serves(store):
    # In WAL mode only an exclusive locking mode keeps readers out (a checkpoint or a recovery can too).
    exclusive = ("PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE", "UPDATE categories SET name = name")
    rows = await waited_off_the_loop(store.url, lambda: store.fast.all(_CATEGORIES), *exclusive)
    assert len(rows) > 0


async def test_without_another_process_every_statement_runs_on_the_loop_thread(store):
    loop_thread = threading.get_ident()
    ran_on: list[int] = []
    await store.fast.all(_CATEGORIES)
    async with store.write_session() as session, session.begin():
        raw = await (await session.connection()).get_raw_connection()
        raw.driver_connection._connection.set_trace_callback(lambda sql: ran_on.append(threading.get_ident()))
        await session.execute(
            text(
                "INSERT INTO categories (id, name, slug, icon, \"order\") VALUES ('cat_x', 'X', 'x', 'x', 99)"
            )
        )
        await session.execute(text("SELECT count(*) FROM categories"))
    assert ran_on and set(ran_on) == {loop_thread}  # no hop to aiosqlite's thread for any of them
