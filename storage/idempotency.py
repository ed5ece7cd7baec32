"""Idempotency records: the first result of a create run under a caller's idempotency key.

A create claims its key in its own transaction, before it writes anything else, and keeps its
result in the same transaction: the record commits with the create or not at all. A second
transaction claiming the same key while the first is running waits for it (PostgreSQL: the
upsert waits on the primary key; SQLite: there is one writer), then finds its record, or, if the
first rolled back, claims the key itself.

A replay names what the first call created; `vanished` tells the runner whether it is still there.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    String,
    Table,
    TypeDecorator,
    delete,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from storage.db import Db
from storage.tables import IdempotencyRecord, metadata

__all__ = ["claim_key", "keep_result", "prune_expired", "vanished"]

_PRUNED_AT_ONCE = 100
"""Expired records one claim deletes at most: a claim stays cheap, and claims outnumber expiries."""


async def claim_key(
    db: Db,
    *,
    caller: str,
    key: str,
    producer_id: str,
    operation: str,
    request_hash: str,
    now: datetime,
    expires_at: datetime,
) -> IdempotencyRecord | None:
    """Claim `caller`'s `key` for a create about to run in this transaction: None when claimed (no
    record held it, or only an expired one, which the claim replaces), else the live record that holds it.

    On PostgreSQL (READ COMMITTED) a record another transaction has claimed but not committed makes
    this wait until that transaction ends; the record is then found, or claimed if it rolled back.
    The record found stays locked to this transaction, so nothing prunes it in between."""
    session = db.session
    insert = postgresql_insert if db.dialect.name == "postgresql" else sqlite_insert
    claim = insert(IdempotencyRecord).values(
        caller=caller,
        key=key,
        producer_id=producer_id,
        operation=operation,
        request_hash=request_hash,
        result={},  # the create keeps its result here before it commits (`keep_result`)
        created_at=now,
        expires_at=expires_at,
    )
    replace_expired = {
        name: claim.excluded[name]
        for name in ("producer_id", "operation", "request_hash", "result", "created_at", "expires_at")
    }
    claim = claim.on_conflict_do_update(
        index_elements=["caller", "key"], set_=replace_expired, where=col(IdempotencyRecord.expires_at) <= now
    ).returning(col(IdempotencyRecord.caller))
    if (await session.execute(claim)).first() is not None:
        return None
    held = select(IdempotencyRecord).where(
        col(IdempotencyRecord.caller) == caller, col(IdempotencyRecord.key) == key
    )
    return (await session.scalars(held)).one()


async def keep_result(db: Db, *, caller: str, key: str, result: dict[str, Any]) -> None:
    """Store the result of the create that claimed `caller`'s `key` in this transaction."""
    session = db.session
    statement = (
        update(IdempotencyRecord)
        .where(col(IdempotencyRecord.caller) == caller, col(IdempotencyRecord.key) == key)
        .values(result=result)
    )
    await session.execute(statement)


async def prune_expired(db: Db, *, now: datetime) -> None:
    """Delete up to `_PRUNED_AT_ONCE` expired records, of any caller, oldest first. On PostgreSQL
    records another transaction holds are skipped rather than waited for: pruning never makes
    one caller's create wait for another's."""
    session = db.session
    expired = (
        select(col(IdempotencyRecord.caller), col(IdempotencyRecord.key))
        .where(col(IdempotencyRecord.expires_at) <= now)
        .order_by(col(IdempotencyRecord.expires_at))
        .limit(_PRUNED_AT_ONCE)
        .with_for_update(skip_locked=True)  # SQLite, one writer, has no row locks and renders none
    )
    await session.execute(
        delete(IdempotencyRecord).where(
            tuple_(col(IdempotencyRecord.caller), col(IdempotencyRecord.key)).in_(expired)
        )
    )


def _is_text(column_type: Any) -> bool:
    return isinstance(column_type.impl if isinstance(column_type, TypeDecorator) else column_type, String)


@cache
def _tables_by_id() -> tuple[Table, ...]:
    """The tables whose rows are named by a text `id` primary key (`storage.ids.new_id`): every
    resource a create makes. (PostgreSQL would refuse comparing an integer key with a text.)"""
    return tuple(
        table
        for table in metadata.sorted_tables
        if [column.name for column in table.primary_key] == ["id"] and _is_text(table.c.id.type)
    )


async def vanished(db: Db, ids: Collection[str]) -> set[str]:
    """Those of `ids` that no table holds any more: deleted since a create made them (or with what
    held them). Only a replay asks: one statement, a primary-key lookup in each table."""
    session = db.session
    if not ids:
        return set()
    found = union_all(*(select(table.c.id).where(table.c.id.in_(ids)) for table in _tables_by_id()))
    return set(ids) - set(await session.scalars(found))
