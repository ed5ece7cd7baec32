"""Per-key request counters in fixed one-minute windows.

On PostgreSQL the counters live in the database, so a limit holds across every server
process. SQLite is the one-process store, so its counters stay in that process's memory
and no read has to become a write.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql
from sqlmodel import col

from storage.engine import Store
from storage.tables import RateLimitWindow

__all__ = ["WindowCounter", "counter_for"]


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


def counter_for(store: Store) -> WindowCounter:
    return _MemoryCounter() if store.is_sqlite else _DatabaseCounter(store)
