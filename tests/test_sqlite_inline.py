"""SQLite calls run on the event loop's thread, and wait for another process's lock without
blocking it (`storage/sqlite_inline.py`, `storage/fast.py`).

The other process is a plain `sqlite3` connection of this test holding the lock, as a CLI command
or a second server would. While it does, a ticker coroutine must keep ticking: the waiting call
sits in a worker thread, not on the loop. When the lock goes, the call completes.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import anyio
import pytest
from sqlalchemy import make_url, select, text

from storage.fast import Query
from storage.tables import Category

pytestmark = [pytest.mark.anyio, pytest.mark.sqlite_only]

_CATEGORIES = Query(select(Category.id).order_by(Category.id))
_HOLD_SECONDS = 0.6


async def _ticks_while(call) -> tuple[object, int, float]:
    """Run `call()` beside a coroutine ticking every 20 ms; its result, the ticks, the seconds."""
    ticks = 0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await anyio.sleep(0.02)
            ticks += 1

    result = None
    started = time.monotonic()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        result = await call()
        done.set()
    return result, ticks, time.monotonic() - started


def _hold(database: str, *statements: str) -> sqlite3.Connection:
    other = sqlite3.connect(database, isolation_level=None)
    for statement in statements:
        other.execute(statement)
    return other


async def _release_later(other: sqlite3.Connection) -> None:
    await anyio.sleep(_HOLD_SECONDS)
    other.execute("COMMIT")
    other.close()


async def _count_in_a_write(store) -> int:
    async with store.write_session() as session, session.begin():
        return (await session.execute(text("SELECT count(*) FROM categories"))).scalar_one()


async def test_a_write_waits_for_another_process_write_lock_in_a_thread_while_the_loop_serves(store):
    await _count_in_a_write(store)  # the store's connection is open (the file in WAL mode) before the lock
    other = _hold(make_url(store.url).database, "BEGIN IMMEDIATE")

    async def write() -> int:
        return await _count_in_a_write(store)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_release_later, other)
        count, ticks, seconds = await _ticks_while(write)
    assert count > 0
    assert seconds >= _HOLD_SECONDS * 0.9  # it did wait for the lock...
    assert ticks >= 10  # ...and the event loop went on meanwhile


async def test_a_fast_read_waits_for_an_exclusive_lock_in_a_thread_while_the_loop_serves(store):
    await store.fast.all(_CATEGORIES)  # the reader's connection is open before the lock is taken
    # In WAL mode only an exclusive locking mode keeps readers out (a checkpoint or a recovery can too).
    other = _hold(make_url(store.url).database, "PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE",
                  "UPDATE categories SET name = name")  # fmt: skip

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_release_later, other)
        rows, ticks, seconds = await _ticks_while(lambda: store.fast.all(_CATEGORIES))
    assert len(rows) > 0
    assert seconds >= _HOLD_SECONDS * 0.9
    assert ticks >= 10


async def test_without_another_process_every_statement_runs_on_the_loop_thread(store):
    loop_thread = threading.get_ident()
    ran_on: list[int] = []
    await store.fast.all(_CATEGORIES)
    async with store.write_session() as session, session.begin():
        raw = await (await session.connection()).get_raw_connection()
        raw.driver_connection._connection.set_trace_callback(lambda sql: ran_on.append(threading.get_ident()))
        await session.execute(text("INSERT INTO categories (id, name, slug, icon, \"order\") VALUES ('cat_x', 'X', 'x', 'x', 99)"))
        await session.execute(text("SELECT count(*) FROM categories"))
    assert ran_on and set(ran_on) == {loop_thread}  # no hop to aiosqlite's thread for any of them
