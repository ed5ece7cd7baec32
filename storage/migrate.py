"""Schema migrations with Alembic: the only way the schema is created or changed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["SchemaBehind", "alembic_config", "check_schema_current", "database_revision", "upgrade", "upgrade_async"]

_MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaBehind(Exception):
    """The database's schema is older than this code; `blohko db upgrade` brings it up."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; runs its own event loop for async drivers)."""
    command.upgrade(alembic_config(url), revision)


def _head(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def check_schema_current(engine: AsyncEngine) -> None:
    """Raise `SchemaBehind` unless the database is at the newest migration."""
    url = engine.url.render_as_string(hide_password=False)

    def current(sync_connection) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    async with engine.connect() as connection:
        revision = await connection.run_sync(current)
    head = _head(url)
    if revision != head:
        found = revision or "an empty database"
        raise SchemaBehind(
            f"the database schema is at {found}, this server needs {head}: run `blohko db upgrade`"
        )


def database_revision(url: str) -> str | None:
    """The revision the database at `url` is at (None: never migrated). Blocking."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def read() -> str | None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` from async code: Alembic runs its own event loop, so it goes to a worker thread."""
    import anyio.to_thread

    await anyio.to_thread.run_sync(upgrade, url, revision)
