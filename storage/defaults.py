"""Store defaults the settings need, importable without SQLAlchemy (a stdio server's cold start
reads its settings before anything else, and must not pay for the database layer to do so)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_WRITE_QUEUE_LIMIT", "DEFAULT_WRITE_QUEUE_TIMEOUT", "SQLITE_BUSY_TIMEOUT_MS", "default_database_url"]

DEFAULT_WRITE_QUEUE_LIMIT = 1000
"""Writes that may wait for their turn at once; one more is refused at once rather than queued."""
DEFAULT_WRITE_QUEUE_TIMEOUT = 30.0
"""Seconds a write may wait for its turn before it is refused."""
SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a call waits for another process's lock on an SQLite file before it fails as locked."""


def default_database_url() -> str:
    """An SQLite file in the user's data directory, so any working directory finds the same store."""
    from platformdirs import user_data_dir

    path = Path(user_data_dir("blohko", appauthor=False)) / "blohko.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{path}"
