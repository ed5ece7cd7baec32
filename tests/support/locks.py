"""Another process holding an SQLite file's lock, as a CLI command or a second server would: a
plain `sqlite3` connection of the test. While it holds the lock a ticker coroutine must keep
ticking, since the waiting call sits in a worker thread, not on the event loop; when the lock
goes, the call completes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from tests.support.databases import sqlite_path

HOLD_SECONDS = 0.6

T = TypeVar("T")


async def ticks_while(call: Callable[[], Awaitable[T]]) -> tuple[T, int, float]:
    """Run `call()` beside a coroutine ticking every 20 ms; its result, the ticks, the seconds."""
    ticks = 0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await anyio.sleep(0.02)  # ticks on the real loop: the waiting call must not block it
            ticks += 1

    results: list[T] = []  # filled inside the task group, read once it has ended
    started = time.monotonic()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        results.append(await call())
        done.set()
    (result,) = results
    return result, ticks, time.monotonic() - started


def hold(store_url: str, *statements: str) -> sqlite3.Connection:
    """Another connection to the store's file, having run `statements` (a lock it now holds)."""
    other = sqlite3.connect(sqlite_path(store_url), isolation_level=None)
    for statement in statements:
        other.execute(statement)
    return other


async def release_later(other: sqlite3.Connection) -> None:
    await anyio.sleep(HOLD_SECONDS)  # another connection holds the real file lock this long
    other.execute("COMMIT")
    other.close()


async def waited_off_the_loop(store_url: str, call: Callable[[], Awaitable[T]], *held: str) -> T:
    """Run `call` while another connection holds the lock `held` takes, for `HOLD_SECONDS`;
    check that it waited for the lock while the event loop went on, and return its result.
    `call` runs once before, so its connection is open before the lock is taken."""
    await call()
    other = hold(store_url, *held)
    measured: list[tuple[T, int, float]] = []  # filled inside the task group, read once it has ended
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(release_later, other)
        measured.append(await ticks_while(call))
    ((result, ticks, seconds),) = measured
    assert seconds >= HOLD_SECONDS * 0.9  # it did wait for the lock...
    assert ticks >= 10  # ...and the event loop went on meanwhile
    return result
