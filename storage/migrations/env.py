"""Alembic environment: runs migrations over `sqlalchemy.url` (`storage.migrate.migration_url`):
an SQLite file through `sqlite3`, PostgreSQL over an async engine in an event loop of its own."""

import asyncio

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.ext.asyncio import create_async_engine

from storage.search import include_in_schema_comparison
from storage.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_in_schema_comparison,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("set sqlalchemy.url in the Alembic config, or pass a connection in its attributes")
    return url


def _run_blocking() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


if context.config.attributes.get("connection") is not None:
    _run(context.config.attributes["connection"])
elif _url().startswith("sqlite"):
    _run_blocking()
elif _in_running_loop():
    raise RuntimeError("call storage.migrate.upgrade from a worker thread, not inside an event loop")
else:
    asyncio.run(_run_async())
