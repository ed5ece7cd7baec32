"""Store defaults the settings need, importable without SQLAlchemy (a stdio server's cold start
reads its settings before anything else, and must not pay for the database layer to do so)."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ACCEPTED_DATABASE_URLS",
    "DEFAULT_MAX_OVERFLOW",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_WRITE_QUEUE_LIMIT",
    "DEFAULT_WRITE_QUEUE_TIMEOUT",
    "SQLITE_BUSY_TIMEOUT_MS",
    "DatabaseUrlError",
    "default_database_path",
    "default_database_url",
    "normalize_database_url",
]

DEFAULT_WRITE_QUEUE_LIMIT = 1000
"""Writes that may wait for their turn at once; one more is refused at once rather than queued."""
DEFAULT_WRITE_QUEUE_TIMEOUT = 30.0
"""Seconds a write may wait for its turn before it is refused."""
DEFAULT_POOL_SIZE = 10
"""PostgreSQL: connections one process keeps open."""
DEFAULT_MAX_OVERFLOW = 20
"""PostgreSQL: connections one process may open beyond its pool under a burst."""
SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a call waits for another process's lock on an SQLite file before it fails as locked."""


ACCEPTED_DATABASE_URLS = "sqlite:///path/to/blohko.db or postgresql+asyncpg://user:password@host:5432/name"
"""The forms `BLOHKO_DATABASE_URL` takes, as error messages and help texts name them."""

# The drivers the store runs on, and the other schemes that mean them: SQLite through the
# standard library's `sqlite3` (`sqlite+aiosqlite://`, which earlier versions wrote, still names
# the same file), PostgreSQL through asyncpg.
_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "sqlite+aiosqlite": "sqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class DatabaseUrlError(ValueError):
    """A database URL this server cannot use: not a URL, or a database or driver it does not run on."""


def normalize_database_url(url: str) -> str:
    """`url` with the driver the store runs it on (`sqlite+aiosqlite:///x` -> `sqlite:///x`,
    `postgresql://` -> `postgresql+asyncpg://`); raises `DatabaseUrlError` for anything but SQLite and PostgreSQL.

    By hand, not with SQLAlchemy's parser: settings are read at a stdio server's cold start."""
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme:
        raise DatabaseUrlError(f"the database URL {_shown(url)!r} is not a URL: use {ACCEPTED_DATABASE_URLS}")
    driver = _DRIVERS.get(scheme.lower())
    if driver is None:
        raise DatabaseUrlError(
            f"the database URL starts with {scheme}://, which Blohko does not run on: use {ACCEPTED_DATABASE_URLS}"
        )
    return f"{driver}://{rest}"


def _shown(url: str) -> str:
    """`url` for an error message: at most its first 80 characters (it may be anything pasted)."""
    return url if len(url) <= 80 else url[:77] + "..."


def default_database_path() -> Path:
    """Where the default SQLite store lives: `blohko.db` in the user's data directory."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("blohko", appauthor=False)) / "blohko.db"


def default_database_url() -> str:
    """An SQLite file in the user's data directory, so any working directory finds the same store."""
    path = default_database_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"
