"""storage/statements.py: a `PreparedQuery` is compiled once per dialect and a read's `Db` runs it on
the reader's connection (`storage/reader.py`), with the call's parameters bound, and hands back the
rows the ORM would."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import bindparam, select, update
from sqlmodel import col

from storage.engine import Store
from storage.statements import PreparedQuery
from storage.tables import ApiKey, Producer
from tests.support.factories import Tenant

_KEY = PreparedQuery(
    select(
        col(ApiKey.id).label("id"),
        col(ApiKey.name).label("name"),
        col(ApiKey.permissions).label("permissions"),
        col(ApiKey.created_at).label("created_at"),
        col(ApiKey.expires_at).label("expires_at"),
    ).where(col(ApiKey.producer_id) == bindparam("producer_id"), col(ApiKey.name) == bindparam("name"))
)
"""Text, JSON and timestamps (one of them null): every kind of value a type processor touches."""

_PRODUCER_NAMED = PreparedQuery(
    select(col(Producer.id).label("id"), col(Producer.name).label("name")).where(
        col(Producer.name) == bindparam("name")
    )
)


async def test_a_prepared_query_returns_the_rows_the_orm_query_gives(store: Store, tenant: Tenant):
    params = {"producer_id": tenant.producer_id, "name": "test key"}
    async with store.sessions() as session:
        through_orm = dict((await session.execute(_KEY.statement, params)).mappings().one())
    async with store.reading() as db:
        fast = await db.first(_KEY, **params)
    assert fast == through_orm
    assert fast is not None and fast["permissions"] == ["*"] and fast["created_at"].utcoffset() is not None


async def test_parameters_are_bound_never_written_into_the_sql(store: Store, tenant: Tenant):
    async with store.writing() as db:
        producer = await db.session.get(Producer, tenant.producer_id)
        assert producer is not None  # the tenant fixture made it
        producer.name = "O'Brien Academy"
    sql = _PRODUCER_NAMED.compiled(store.dialect).sql
    assert "O'Brien" not in sql
    async with store.reading() as db:
        assert await db.rows(_PRODUCER_NAMED, name="O'Brien Academy") == [
            {"id": tenant.producer_id, "name": "O'Brien Academy"}
        ]
        assert await db.first(_PRODUCER_NAMED, name="' OR '1'='1") is None


async def test_a_compiled_read_is_counted_once_and_opens_no_session(store: Store, tenant: Tenant):
    async with store.reading() as db:
        with store.statements_seen() as seen:
            assert await db.first(_KEY, producer_id=tenant.producer_id, name="test key") is not None
        assert db.opened_session is None
    assert seen == [_KEY.compiled(store.dialect).sql]


def test_a_query_is_compiled_once_per_dialect(store: Store):
    query = PreparedQuery(
        select(col(Producer.id).label("id")).where(col(Producer.id) == bindparam("producer_id"))
    )
    first = query.compiled(store.dialect)
    assert query.compiled(store.dialect) is first
    assert first.names == ("producer_id",)


def test_an_expanding_in_parameter_is_refused_when_compiled(store: Store):
    query = PreparedQuery(
        select(col(Producer.id).label("id")).where(col(Producer.id).in_(bindparam("ids", expanding=True)))
    )
    with pytest.raises(ValueError, match="expanding IN"):
        query.compiled(store.dialect)


@pytest.mark.sqlite_only
async def test_the_sqlite_reader_cannot_write(store: Store, tenant: Tenant):
    rename = PreparedQuery(
        update(Producer).where(col(Producer.id) == bindparam("producer_id")).values(name="X")
    )
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store.reader.raw(rename, producer_id=tenant.producer_id)


async def test_a_read_refuses_to_write_and_names_why(store: Store, tenant: Tenant):
    rename = PreparedQuery(
        update(Producer).where(col(Producer.id) == bindparam("producer_id")).values(name="X")
    )
    async with store.reading() as db:
        with pytest.raises(RuntimeError, match="a read writes nothing"):
            await db.run(rename, producer_id=tenant.producer_id)


async def test_a_write_reads_its_own_uncommitted_changes_through_compiled_statements(
    store: Store, tenant: Tenant
):
    async with store.writing() as db:
        producer = await db.session.get(Producer, tenant.producer_id)
        assert producer is not None
        producer.name = "Renamed Academy"  # pending in the session: flushed before the statement runs
        assert await db.first(_PRODUCER_NAMED, name="Renamed Academy") == {
            "id": tenant.producer_id,
            "name": "Renamed Academy",
        }
