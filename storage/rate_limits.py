"""Per-key request counters in fixed one-minute windows, shared by every server process.

On PostgreSQL the counters live in the database, so a limit holds across processes and machines.
On SQLite a counter in the database would make every read a write, which takes turns with every
other write of the file: the counters live instead in a small file beside the database,
`<database>-rate-limits`, mapped into the memory of every Blohko process on that database (as
SQLite's own `-shm` file is) and changed under a `flock` held for a few microseconds. So
`blohko serve --http --workers N`, or two servers on one file, count a key once. A database in
memory has one process, and counts in its memory.

The file is a table of `_SLOTS` slots, each a key's fingerprint (8 bytes of BLAKE2b of its id),
the window it counts and the count; a key takes the first slot, from where its fingerprint points,
that holds it or holds a finished window. Nothing in it is secret (fingerprints of key and session
ids, counts); a file found smaller is grown, never shrunk (another process may have it mapped),
and a slot that holds no plausible window is free. Where it cannot be used (no
`fcntl`, the table full for a key, the lock held past `_LOCK_WAIT_SECONDS` by a process that hangs)
the count falls back to this process's memory: the limit still holds per process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mmap
import os
import struct
import sys
import threading
import time
import weakref
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlmodel import col

from storage.engine import Store
from storage.reader import sqlite_database
from storage.tables import RateLimitWindow

if sys.platform != "win32":
    import fcntl

__all__ = ["WindowCounter", "counter_for"]

logger = logging.getLogger("blohko.rate_limits")

_SLOT = struct.Struct("<8sqq")
"""A slot: the key's fingerprint, its window (minutes since the epoch), its count."""
_SLOTS = 8192
"""Keys and sessions counted at once on one database (384 KiB); a minute's window frees its slots."""
_PROBES = 64
"""Slots a key may look at, from where its fingerprint points, before counting in memory."""
_LOCK_WAIT_SECONDS = 0.05
"""How long a hit waits for another process's few microseconds under the lock before it counts in memory."""


class WindowCounter(Protocol):
    async def hit(self, key_id: str, window_start: datetime) -> int:
        """Count one request of `key_id` in the window starting at `window_start`; the new count."""
        ...


class _MemoryCounter:
    def __init__(self) -> None:
        self._window: datetime | None = None
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    async def hit(self, key_id: str, window_start: datetime) -> int:
        with self._lock:
            if window_start != self._window:  # a new window: the old counts are done with
                self._window, self._counts = window_start, {}
            self._counts[key_id] = self._counts.get(key_id, 0) + 1
            return self._counts[key_id]


class _DatabaseCounter:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def hit(self, key_id: str, window_start: datetime) -> int:
        insert = postgresql.insert(RateLimitWindow).values(key_id=key_id, window_start=window_start, count=1)
        upsert = insert.on_conflict_do_update(
            index_elements=["key_id", "window_start"], set_={"count": col(RateLimitWindow.count) + 1}
        ).returning(col(RateLimitWindow.count))
        async with self._store.writing() as db:
            session = db.session
            count = (await session.execute(upsert)).scalar_one()
            if count == 1:
                # A caller's first request of a window clears every finished window: the table holds
                # only current counters, also of keys and sessions that are gone.
                await session.execute(
                    delete(RateLimitWindow).where(col(RateLimitWindow.window_start) < window_start)
                )
            return count


class _FileCounter:
    """The counters of every Blohko process on one SQLite file, in the file beside it."""

    def __init__(self, path: str, *, slots: int = _SLOTS) -> None:
        self._path = path
        self._slots = slots
        self._map: mmap.mmap | None = None
        self._fd: int | None = None
        self._in_memory = _MemoryCounter()  # where a hit goes when the file cannot take it
        self._warned = False

    def _mapped(self) -> tuple[int, mmap.mmap]:
        if self._map is None or self._fd is None:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                size = self._slots * _SLOT.size
                # Grown, never shrunk: another process may have it mapped, and a mapping past the
                # end of its file faults. Growing to the same size at once in two processes is no
                # harm (the new bytes are zeros, the old ones stay).
                if os.fstat(fd).st_size < size:
                    os.ftruncate(fd, size)
                self._map = mmap.mmap(fd, size)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            weakref.finalize(self, os.close, fd)
        return self._fd, self._map

    async def hit(self, key_id: str, window_start: datetime) -> int:
        window = int(window_start.timestamp()) // 60
        try:
            fd, table = self._mapped()
            if not await self._lock(fd):
                return await self._fall_back(key_id, window_start, "another process held its lock too long")
            try:
                count = self._count(table, hashlib.blake2b(key_id.encode(), digest_size=8).digest(), window)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as error:
            return await self._fall_back(key_id, window_start, f"it cannot be used ({error})")
        if count is None:
            return await self._fall_back(key_id, window_start, "no slot was free near the key's")
        return count

    async def _lock(self, fd: int) -> bool:
        """The table's lock, taken without blocking the loop: it is held for microseconds, so a
        taken lock is tried again at once, then after the loop's other work, up to the bound."""
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0)

    def _count(self, table: mmap.mmap, fingerprint: bytes, window: int) -> int | None:
        start = int.from_bytes(fingerprint, "little") % self._slots
        free: int | None = None
        for probe in range(min(_PROBES, self._slots)):
            offset = (start + probe) % self._slots * _SLOT.size
            held, held_window, count = _SLOT.unpack_from(table, offset)
            if held == fingerprint and held_window == window:
                _SLOT.pack_into(table, offset, fingerprint, window, count + 1)
                return count + 1
            if free is None and not window <= held_window <= window + 1:
                free = offset  # empty, a finished window's, or not a window at all (a foreign file)
            if held_window == 0:  # never used: no key's slots lie past it (slots are never emptied)
                break
        if free is None:
            return None
        _SLOT.pack_into(table, free, fingerprint, window, 1)
        return 1

    async def _fall_back(self, key_id: str, window_start: datetime, why: str) -> int:
        if not self._warned:
            self._warned = True
            logger.warning(
                "the rate limit's shared counters (%s): %s; counting in this process's memory",
                self._path,
                why,
            )
        return await self._in_memory.hit(key_id, window_start)


def counter_for(store: Store) -> WindowCounter:
    """The store's counters: in the database (PostgreSQL), in the file beside it (SQLite), or in
    this process's memory (SQLite in memory, or no `fcntl`)."""
    if not store.is_sqlite:
        return _DatabaseCounter(store)
    database = sqlite_database(make_url(store.url))
    if database in ("", ":memory:") or sys.platform == "win32":
        return _MemoryCounter()
    return _FileCounter(f"{database}-rate-limits")
