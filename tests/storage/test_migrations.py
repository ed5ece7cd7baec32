"""The schema comes only from migrations, and the migrations produce exactly the models' schema."""

import anyio.to_thread
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    CheckConstraint,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from storage.engine import open_store
from storage.ids import utcnow
from storage.migrate import (
    HEAD,
    SchemaBehind,
    alembic_config,
    check_schema_current,
    current_revision,
    script_head,
    upgrade,
    upgrade_async,
)
from storage.search import NAME_FTS_TABLE, include_in_schema_comparison
from storage.tables import OWNER_EMAIL_INDEX, ROLLUP_TABLES, Course, Lesson, Producer, User, metadata
from tests.support.databases import ENGINE, raw_connection
from tests.support.factories import mcp_client, ok
from tests.support.processes import cli_env, run_cli
from tests.support.table_rows import valid_rows
from tools.domains.accounts import create_api_key


async def test_migrations_produce_exactly_the_models_schema(databases):
    url = databases.new("schema")
    await upgrade_async(url)

    def differences(connection):
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_in_schema_comparison}
        )
        return compare_metadata(context, metadata)

    async with raw_connection(url) as connection:
        diff = await connection.run_sync(differences)
    assert diff == []


async def test_an_unmigrated_database_is_reported_behind(databases):
    url = databases.new("behind")
    with pytest.raises(SchemaBehind, match="blohko db upgrade"):
        await check_schema_current(url)


async def test_a_database_one_migration_behind_is_reported_behind(databases):
    url = databases.new("older")
    await upgrade_async(url, "0001")
    with pytest.raises(SchemaBehind, match="is at 0001"):
        await check_schema_current(url)


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
    await check_schema_current(url)


def test_the_head_the_server_checks_is_the_newest_migration_script():
    assert script_head() == HEAD


def _compiled(check: CheckConstraint, dialect) -> str:
    return str(check.sqltext.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def test_the_migrated_constraints_are_the_models(databases):
    # Alembic's comparison leaves CHECK constraints and partial index conditions out.
    url = databases.new("checks")
    await upgrade_async(url)

    def reflect(connection):
        inspector = inspect(connection)
        checks = {
            table: {c["name"]: c["sqltext"] for c in inspector.get_check_constraints(table)}
            for table in metadata.tables
        }
        owner_index = next(i for i in inspector.get_indexes("users") if i["name"] == OWNER_EMAIL_INDEX)
        return checks, owner_index, connection.dialect

    async with raw_connection(url) as connection:
        checks, owner_index, dialect = await connection.run_sync(reflect)
    declared = {
        table.name: {
            c.name: _compiled(c, dialect) for c in table.constraints if isinstance(c, CheckConstraint)
        }
        for table in metadata.tables.values()
    }
    assert {table: set(found) for table, found in checks.items()} == {
        table: set(d) for table, d in declared.items()
    }
    if ENGINE == "sqlite":  # PostgreSQL answers its own rewriting of each condition
        assert checks == declared
    assert owner_index["unique"] and owner_index["column_names"] == ["email_normalized"]
    condition = str(owner_index["dialect_options"][f"{ENGINE}_where"])
    assert condition in ("role = 'owner'", "((role)::text = 'owner'::text)")


_ADDED_AFTER_0008 = (
    "oauth_clients",
    "oauth_grants",
    "oauth_codes",
    "oauth_tokens",  # 0011
    "event_counters",
    "events",  # 0012
    "webhook_endpoints",
    "webhook_deliveries",  # 0013
    "idempotency_records",  # 0014
    "credential_revision",  # 0015
    *sorted(ROLLUP_TABLES),  # 0017
)


def _row(rows: list, table: str) -> dict:
    return next(values for t, values in rows if t.name == table)


async def _insert(url: str, rows: list) -> None:
    """Insert the rows of the tables the database has, with the columns it has (an older revision
    lacks the newer tables and columns)."""

    def columns_by_table(sync) -> dict[str, set[str]]:
        inspector = inspect(sync)
        return {
            name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()
        }

    async with raw_connection(url) as connection:
        present = await connection.run_sync(columns_by_table)
        for full, values in rows:
            if (
                full.name in present
            ):  # a plain table of the columns the revision has: no newer column's default
                kept = {name: value for name, value in values.items() if name in present[full.name]}
                older = sa_table(full.name, *(sa_column(name, full.c[name].type) for name in kept))
                await connection.execute(insert(older).values(kept))


async def _counts(store) -> dict[str, int]:
    """Rows in each table the database has (an older revision lacks the newer tables)."""
    async with raw_connection(store.url) as connection:
        present = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        tables = [t for t in metadata.sorted_tables if t.name in present]
        counted = [
            (await connection.execute(select(func.count()).select_from(t))).scalar_one() for t in tables
        ]
    return {table.name: count for table, count in zip(tables, counted, strict=True)}


async def _downgrade(url: str, revision: str) -> None:
    await anyio.to_thread.run_sync(command.downgrade, alembic_config(url), revision)


async def test_upgrade_stops_naming_the_email_where_owners_already_share_one(databases):
    url = databases.new("owners")
    await upgrade_async(url, "0008")
    first, second = valid_rows("a"), valid_rows("b")
    _row(second, "users").update(email="ownera@example.com", email_normalized="ownera@example.com")
    await _insert(url, first + second)
    with pytest.raises(
        RuntimeError, match="users: owners sharing the emails ownera@example.com break uq_users_owner_email"
    ):
        await upgrade_async(url)


async def test_upgrade_stops_before_any_change_naming_each_constraint_existing_rows_break(databases):
    url = databases.new("broken")
    await upgrade_async(url, "0008")
    rows = valid_rows("a")
    _row(rows, "courses").update(level="expert", price=-5, slug="Bad Slug!")  # the security review's row
    await _insert(url, rows)

    with pytest.raises(RuntimeError, match="existing rows break them") as stopped:
        await upgrade_async(url)

    for name in ("ck_courses_level", "ck_courses_price", "ck_courses_slug"):
        assert f"courses: 1 row(s) break {name}" in str(stopped.value)
    async with open_store(url) as store:
        assert await current_revision(url) == "0008"
        assert (await _counts(store))["courses"] == 1


def _student(user_id: str, producer_id: str, name: str) -> tuple:
    now = utcnow()
    email = f"{user_id}@example.com"
    values = {
        "id": user_id,
        "producer_id": producer_id,
        "name": name,
        "email": email,
        "email_normalized": email,
        "role": "student",
        "created_at": now,
        "updated_at": now,
    }
    return User.__table__, values


async def test_rows_survive_the_upgrade_with_foreign_keys_cascades_and_name_search_intact(databases):
    url = databases.new("survive")
    await upgrade_async(url, "0008")
    rows = valid_rows("a")
    producer_id = _row(rows, "producers")["id"]
    # A deleted user leaves a gap in the rowids that a table rebuild closes: the name index must follow.
    await _insert(
        url,
        [
            *rows,
            _student("user_gone", producer_id, "Gone Soon"),
            _student("user_zb", producer_id, "Zed Before"),
        ],
    )
    async with open_store(url) as store:
        async with raw_connection(store.url) as connection:
            await connection.execute(delete(User).where(col(User.id) == "user_gone"))
        before = await _counts(store)

    await upgrade_async(url)

    async with open_store(url) as store:
        after = await _counts(store)
        assert {table: after[table] for table in before} == before  # and the tables it adds start empty,
        # but for the one row the credential revision is, and the rollups of the rows already there:
        added = {table: count for table, count in after.items() if table not in before and count}
        assert added == {"credential_revision": 1, **dict.fromkeys(ROLLUP_TABLES, 1)}
        with pytest.raises(IntegrityError, match="(?i)foreign key"):
            async with raw_connection(store.url) as connection:
                await connection.execute(update(Lesson).values(section_id="section_none"))
        async with store.writing() as db:
            key = await create_api_key(db, producer_id=producer_id, name="k", permissions=["*"], clock=utcnow)
        async with mcp_client(store, key.key) as client:
            ok(
                await client.call_tool(
                    "register_student", {"name": "Zed After", "email": "after@example.com"}
                )
            )
            found = ok(await client.call_tool("list_students", {"search": "zed"}))["data"]
            gone = ok(await client.call_tool("list_students", {"search": "gone"}))["data"]
        assert sorted(student["name"] for student in found) == ["Zed After", "Zed Before"] and gone == []
        async with raw_connection(store.url) as connection:
            await connection.execute(delete(Producer).where(Producer.id == producer_id))
        left = {table: count for table, count in (await _counts(store)).items() if count}
    # Reference data, and counters that name no tenant (they go when the next minute's counting starts).
    assert left == {
        "categories": 12 + 1,
        "login_failures": 1,
        "rate_limit_windows": 1,
        "credential_revision": 1,
    }


@pytest.mark.sqlite_only  # SQLite alone rebuilds tables
def test_the_sqlite_upgrade_refuses_a_connection_with_foreign_keys_on(databases):
    url = databases.new("fk-on")
    upgrade(url, "0008")
    engine = create_engine(make_url(url).set(drivername="sqlite"))
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            config = alembic_config(url)
            config.attributes["connection"] = connection
            with pytest.raises(RuntimeError, match="needs foreign keys off"):
                command.upgrade(config, "head")
    finally:
        engine.dispose()


async def test_downgrade_drops_the_constraints_and_keeps_the_rows(databases):
    url = databases.new("downgrade")
    await upgrade_async(url)
    rows = valid_rows("a")
    await _insert(url, rows)
    async with open_store(url) as store:
        before = await _counts(store)

    await _downgrade(url, "0008")

    async with open_store(url) as store:
        after = await _counts(store)
        assert after == {table: count for table, count in before.items() if table in after}
        assert set(before) - set(after) == set(_ADDED_AFTER_0008)
        async with raw_connection(store.url) as connection:
            await connection.execute(update(Course).values(level="expert"))  # no constraint left to refuse it
            if ENGINE == "sqlite":  # the name index still follows the users table
                late = _student("user_late", _row(rows, "producers")["id"], "Late Zed")[1]
                await connection.execute(insert(User.__table__).values(late))
                match = f"SELECT rowid FROM {NAME_FTS_TABLE} WHERE {NAME_FTS_TABLE} MATCH '\"zed\"'"
                names = (
                    (await connection.exec_driver_sql(f"SELECT name FROM users WHERE rowid IN ({match})"))
                    .scalars()
                    .all()
                )
                assert names == ["Late Zed"]
    with pytest.raises(RuntimeError, match="courses: 1 row\\(s\\) break ck_courses_level"):
        await upgrade_async(url)
