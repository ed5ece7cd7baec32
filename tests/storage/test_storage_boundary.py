"""The store owns its SQL: `tools/` imports neither SQLAlchemy nor SQLModel, and the store raises
its own errors (`storage.errors`) where the database refuses or fails a write."""

from __future__ import annotations

import ast
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

import storage.engine
from storage.engine import open_store
from storage.errors import ConstraintViolation, Locked
from storage.ids import new_id
from storage.tables import OWNER_EMAIL_INDEX, Producer, User
from tests.support.databases import sqlite_path
from tests.support.factories import error, make_tenant, mcp_client, ok, principal_of
from tools.core.errors import Conflict
from tools.core.runner import run_operation
from tools.domains.accounts import record_last_use
from tools.registry import TOOLS

ROOT = Path(__file__).resolve().parents[2]
_SQL_LIBRARIES = {"sqlalchemy", "sqlmodel"}


def _sql_imports(source: str) -> list[str]:
    """The imports of a SQL library in `source`, as `line: module`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {module}" for module in modules if module.split(".")[0] in _SQL_LIBRARIES]
    return found


def test_no_module_of_tools_imports_sqlalchemy_or_sqlmodel():
    offending = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "tools").rglob("*.py"))
        if (found := _sql_imports(path.read_text()))
    }
    assert offending == {}, "SQL belongs in storage/: give the operation a storage function instead"


def test_the_import_check_finds_every_form_of_a_sql_import():
    source = "import sqlalchemy\nimport os, sqlmodel.sql as s\nfrom sqlalchemy.exc import IntegrityError\nfrom storage import queries\n"
    assert _sql_imports(source) == ["1: sqlalchemy", "2: sqlmodel.sql", "3: sqlalchemy.exc"]


def _owner(producer_id: str, email: str) -> User:
    return User(
        id=new_id("user"),
        producer_id=producer_id,
        name="Owner",
        email=email,
        email_normalized=email,
        role="owner",
    )


async def test_a_flush_a_unique_index_refuses_raises_a_constraint_violation_naming_the_index(store, tenant):
    twin = Producer(id=new_id("prod"), name="Twin Academy")
    async with store.sessions() as session, session.begin():
        session.add(twin)
        await session.flush()
        session.add(_owner(twin.id, tenant.owner_email))
        with pytest.raises(ConstraintViolation) as refused:
            await session.flush()
        await session.rollback()
    assert refused.value.constraint == OWNER_EMAIL_INDEX
    assert isinstance(refused.value.__cause__, IntegrityError)  # kept for the log


async def test_a_write_refused_at_commit_leaves_the_write_session_as_a_constraint_violation(store, tenant):
    twin = Producer(id=new_id("prod"), name="Twin Academy")
    with pytest.raises(ConstraintViolation) as refused:
        async with store.write_session() as session, session.begin():
            session.add_all([twin, _owner(twin.id, tenant.owner_email)])  # flushed only by the commit
    assert refused.value.constraint == OWNER_EMAIL_INDEX
    async with store.sessions() as session:
        assert await session.get(Producer, twin.id) is None


async def test_a_constraint_an_operation_did_not_expect_is_a_conflict(store, tenant):
    async def adds_a_second_producer_with_the_same_id(ctx, data):
        ctx.session.add(Producer(id=ctx.producer_id, name="Twin Academy"))
        await ctx.session.flush()

    operation = replace(
        next(op for op in TOOLS if op.name == "register_student"),
        handler=adds_a_second_producer_with_the_same_id,
    )
    with pytest.raises(Conflict, match="^The change conflicts with existing data; reload and try again$"):
        await run_operation(
            operation,
            {"name": "Ada", "email": "ada@example.com"},
            store=store,
            principal=principal_of(tenant),
        )


def _hold_the_file_lock(database_url: str) -> sqlite3.Connection:
    """Another process's write transaction on the same SQLite file (a CLI command, a second server)."""
    holder = sqlite3.connect(sqlite_path(database_url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


@pytest.mark.sqlite_only
async def test_a_write_locked_out_past_the_busy_timeout_is_busy_and_writes_nothing(database_url, monkeypatch):
    monkeypatch.setattr(storage.engine, "_SQLITE_BUSY_TIMEOUT_MS", 200)
    async with open_store(database_url) as store:
        tenant = await make_tenant(store, name="Locked Out", permissions=["*"])
        async with mcp_client(store, tenant.key) as client:
            holder = _hold_the_file_lock(database_url)
            try:
                refused = error(
                    await client.call_tool("register_student", {"name": "Ada", "email": "ada@example.com"})
                )
            finally:
                holder.rollback()
                holder.close()
            assert ok(await client.call_tool("list_students", {}))["data"] == []
    assert refused["error"] == "busy" and refused["retryAfter"] == 1


@pytest.mark.sqlite_only
async def test_a_last_use_the_locked_database_refuses_is_logged_not_raised(database_url, monkeypatch, caplog):
    monkeypatch.setattr(storage.engine, "_SQLITE_BUSY_TIMEOUT_MS", 200)
    touched: list[BaseException] = []

    async def touch(session) -> None:
        try:
            await session.execute(Producer.__table__.update().values(name="Touched"))
        except BaseException as failure:
            touched.append(failure)
            raise

    async with open_store(database_url) as store:
        holder = _hold_the_file_lock(database_url)
        try:
            with caplog.at_level(logging.WARNING, logger="blohko.accounts"):
                await record_last_use(store, touch, "API key key_locked")
        finally:
            holder.rollback()
            holder.close()
    assert len(touched) == 1 and "database is locked" in str(touched[0])
    logged = [record for record in caplog.records if record.name == "blohko.accounts"]
    assert [record.getMessage() for record in logged] == [
        "could not record the last use of API key key_locked"
    ]
    assert isinstance(logged[0].exc_info[1], Locked)
