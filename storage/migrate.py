"""Schema migrations with Alembic: the only way the schema is created or changed.

Checking the schema (what `blohko serve` does at every start) reads the `alembic_version`
table with plain SQL against `HEAD`, without importing Alembic: that import is a good part of
a cold start. (On an SQLite file, `storage.startup` reads it with the standard library's
`sqlite3`, and this module imports SQLAlchemy only in the functions that use it.) A test keeps `HEAD` equal to the newest migration script.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # SQLAlchemy is imported where it is used: `require_head` serves a cold start
    from alembic.config import Config
    from sqlalchemy import Connection

__all__ = [
    "HEAD",
    "SchemaBehind",
    "alembic_config",
    "check_schema_current",
    "current_revision",
    "database_revision",
    "migration_url",
    "require_head",
    "script_head",
    "upgrade",
    "upgrade_async",
]

HEAD = "0018"
"""The newest migration's revision: the schema this code needs."""

_MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaBehind(Exception):
    """The database's schema is older than this code; `blohko db upgrade` brings it up."""


def migration_url(url: str) -> str:
    """`url` as Alembic and the revision check connect to it: an SQLite file through the standard
    library's `sqlite3` (blocking: they run outside the event loop, or run their own), PostgreSQL
    through asyncpg."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", migration_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; runs its own event loop for async drivers)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def script_head() -> str | None:
    """The newest revision among the migration scripts (imports Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _revision(connection: Connection) -> str | None:
    from sqlalchemy import inspect, text

    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


async def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at (None: never migrated)."""
    from sqlalchemy import create_engine, pool
    from sqlalchemy.ext.asyncio import create_async_engine

    url = migration_url(url)
    if url.startswith("sqlite"):  # a local file: read at once, on the event loop's thread
        engine = create_engine(url, poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:
                return _revision(connection)
        finally:
            engine.dispose()
    async_engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with async_engine.connect() as connection:
            return await connection.run_sync(_revision)
    finally:
        await async_engine.dispose()


async def check_schema_current(url: str) -> None:
    """Raise `SchemaBehind` unless the database at `url` is at the newest migration."""
    require_head(await current_revision(url))


def require_head(revision: str | None) -> None:
    """Raise `SchemaBehind` unless `revision` is the newest migration."""
    if revision != HEAD:
        found = revision or "an empty database"
        raise SchemaBehind(
            f"the database schema is at {found}, this server needs {HEAD}: run `blohko db upgrade`"
        )


def database_revision(url: str) -> str | None:
    """The revision the database at `url` is at (None: never migrated). Blocking."""
    import asyncio

    return asyncio.run(current_revision(url))


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` from async code: Alembic runs its own event loop, so it goes to a worker thread."""
    import anyio.to_thread

    await anyio.to_thread.run_sync(upgrade, url, revision)
