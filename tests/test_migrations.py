"""The schema comes only from migrations, and the migrations produce exactly the models' schema."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from storage.engine import open_store
from storage.migrate import HEAD, SchemaBehind, check_schema_current, script_head, upgrade, upgrade_async
from storage.search import include_in_schema_comparison
from storage.tables import metadata
from tests.processes import cli_env, run_cli

pytestmark = pytest.mark.anyio


async def test_migrations_produce_exactly_the_models_schema(databases):
    url = databases.new("schema")
    await upgrade_async(url)

    def differences(connection):
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_in_schema_comparison}
        )
        return compare_metadata(context, metadata)

    async with open_store(url) as store, store.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == []


async def test_an_unmigrated_database_is_reported_behind(databases):
    url = databases.new("behind")
    async with open_store(url) as store:
        with pytest.raises(SchemaBehind, match="blohko db upgrade"):
            await check_schema_current(store.engine)


async def test_a_database_one_migration_behind_is_reported_behind(databases):
    url = databases.new("older")
    await upgrade_async(url, "0001")
    async with open_store(url) as store:
        with pytest.raises(SchemaBehind, match="is at 0001"):
            await check_schema_current(store.engine)


def test_serve_refuses_a_schema_that_is_behind_naming_the_command(databases):
    url = databases.new("serve-behind")
    upgrade(url, "0001")
    done = run_cli(cli_env(url, BLOHKO_API_KEY="blk_whatever"), "serve", check=False)
    assert done.returncode != 0 and done.stdout == ""
    assert "run `blohko db upgrade`" in done.stderr


async def test_db_upgrade_brings_it_to_the_newest_schema(databases):
    url = databases.new("upgrade")
    await upgrade_async(url, "0001")
    run_cli(cli_env(url), "db", "upgrade")
    async with open_store(url) as store:
        await check_schema_current(store.engine)


def test_the_head_the_server_checks_is_the_newest_migration_script():
    assert HEAD == script_head()


async def _execute(url: str, *statements: str) -> None:
    async with open_store(url) as store, store.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


def _producer_row(producer_id: str) -> str:
    return f"INSERT INTO producers (id, name, created_at) VALUES ('{producer_id}', 'P', '2026-01-01 00:00:00')"


def _user_row(user_id: str, producer_id: str, email: str, role: str = "student", name: str = "U") -> str:
    return (
        "INSERT INTO users (id, producer_id, name, email, email_normalized, role, created_at, updated_at) VALUES "
        f"('{user_id}', '{producer_id}', '{name}', '{email}', '{email}', '{role}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )


async def test_upgrade_stops_naming_the_email_where_owners_already_share_one(databases):
    url = databases.new("owners")
    await upgrade_async(url, "0008")
    await _execute(
        url,
        _producer_row("prod_1"),
        _producer_row("prod_2"),
        _user_row("user_1", "prod_1", "dup@example.com", role="owner"),
        _user_row("user_2", "prod_2", "dup@example.com", role="owner"),
    )
    with pytest.raises(RuntimeError, match="uq_users_owner_email on users.*dup@example.com"):
        await upgrade_async(url)
