"""The rate limit's counters on SQLite (`storage/rate_limits.py`): a file beside the database that
every Blohko process on it maps, so two processes count a key once; and where that file cannot
take a hit (the table full around a key, its lock held by a process that hangs, a file not ours),
the count goes on in the process's memory rather than failing the call."""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from storage.rate_limits import _SLOT, _SLOTS, _FileCounter, counter_for
from tests.support.databases import sqlite_path

pytestmark = pytest.mark.sqlite_only

WINDOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def _counter_file(store) -> str:
    return f"{sqlite_path(store.url)}-rate-limits"


async def test_two_processes_counters_on_one_database_count_a_key_once(store):
    """Two counters on one file stand for two processes (each maps the file of its own)."""
    first, second = counter_for(store), counter_for(store)
    counts = [await counter.hit("key_a", WINDOW) for counter in (first, second, first, second, second)]
    assert counts == [1, 2, 3, 4, 5]
    assert await first.hit("key_b", WINDOW) == 1  # another key counts apart
    assert await second.hit("key_a", WINDOW + timedelta(minutes=1)) == 1  # a new window starts again
    assert await first.hit("key_a", WINDOW + timedelta(minutes=1)) == 2


async def test_the_counter_file_is_the_owners_alone_and_holds_no_key_id(store):
    counter = counter_for(store)
    await counter.hit("ses_secret-session-id", WINDOW)
    path = _counter_file(store)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    content = Path(path).read_bytes()
    assert b"ses_secret" not in content and content.count(b"\0") < len(content)


async def test_a_file_found_short_and_full_of_garbage_is_grown_and_its_slots_taken_as_free(store):
    path = _counter_file(store)
    Path(path).write_bytes(b"\xff" * 1000 + b"\x7f" * 1000)  # windows far in the past and the future
    counters = [counter_for(store) for _ in range(2)]
    counts = [await counters[n % 2].hit(f"key_{n % 3}", WINDOW) for n in range(9)]
    assert counts == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert os.path.getsize(path) == _SLOTS * _SLOT.size


async def test_a_key_with_no_free_slot_near_it_counts_in_memory_and_says_so_once(store, caplog):
    counter = _FileCounter(_counter_file(store), slots=4)
    for key in ("key_1", "key_2", "key_3", "key_4"):  # every slot holds this window's count
        assert await counter.hit(key, WINDOW) == 1
    with caplog.at_level(logging.WARNING, logger="blohko.rate_limits"):
        assert [await counter.hit("key_5", WINDOW) for _ in range(3)] == [1, 2, 3]
    assert [record.getMessage() for record in caplog.records if "no slot was free" in record.getMessage()]
    assert len(caplog.records) == 1
    assert await counter.hit("key_1", WINDOW) == 2  # the file's counts are untouched
    assert await counter.hit("key_5", WINDOW + timedelta(minutes=1)) == 1  # finished windows free their slots


async def test_a_lock_held_by_a_process_that_hangs_costs_a_call_50_ms_not_the_loop(store, caplog):
    counter = counter_for(store)
    assert await counter.hit("key_a", WINDOW) == 1  # the file exists and is mapped
    hung = os.open(_counter_file(store), os.O_RDWR)
    fcntl.flock(hung, fcntl.LOCK_EX)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.001)
            ticks += 1

    try:
        with caplog.at_level(logging.WARNING, logger="blohko.rate_limits"):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ticker)
                with anyio.fail_after(2):
                    counted = await counter.hit("key_a", WINDOW)
                tasks.cancel_scope.cancel()
    finally:
        os.close(hung)
    assert counted == 1  # counted in memory, where this key had no count yet
    assert ticks >= 5  # the loop went on while the hit waited
    assert any("held its lock too long" in record.getMessage() for record in caplog.records)
    assert await counter.hit("key_a", WINDOW) == 2  # the file again, once the lock is free
