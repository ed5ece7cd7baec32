"""Query helpers whose SQL differs between engines, kept here so operations stay engine-neutral."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, SQLColumnExpression, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from storage.db import Db
from storage.errors import violated_constraint
from storage.search import NameContains
from storage.statements import PreparedQuery
from storage.tables import (
    Achievement,
    ApiKey,
    AuditEvent,
    Certificate,
    Media,
    OAuthGrant,
    User,
    WebhookDelivery,
)

__all__ = [
    "ListStatement",
    "add_row",
    "changed_after",
    "contains_text",
    "count",
    "count_where",
    "delete_row",
    "fetch_page",
    "insert_new",
    "set_changes",
    "update_row",
    "violated_constraint",
]

ListStatement = Select
"""A list's statement as a storage `*_query` function builds it: operations hand it to
`tools.core.paging.paged`, which reads its page through `fetch_page`, and never look inside."""

_INSERT_BY_DIALECT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_text(column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match (ILIKE on PostgreSQL, lower() LIKE lower() on SQLite),
    using the trigram name index for `users.name` (see `storage.search`)."""
    like = column.ilike(f"%{_escape_like(text)}%", escape="\\")
    return NameContains(column, text, like) if column is User.name else like


def count_where(table: Any, *conditions: Any) -> ScalarSelect:
    """`SELECT count(*) FROM table WHERE conditions` as a scalar subquery: several counts in one
    statement (a delete's report, a community's totals), or a count a row is updated to."""
    return select(func.count()).select_from(table).where(*conditions).scalar_subquery()


async def count(db: Db, statement: Select) -> int:
    """The number of rows `statement` would return."""
    session = db.session
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    return (await session.execute(counted)).scalar_one()


def _changed_at(entity: Any) -> SQLColumnExpression[datetime]:
    """When a row of `entity` last changed: its `updated_at`, or for rows that never change after
    they are made (or change only by being revoked or attempted) the time they last did."""
    if hasattr(entity, "updated_at"):
        return entity.updated_at
    immutable = {
        Media: col(Media.created_at),
        Certificate: col(Certificate.issued_at),
        Achievement: col(Achievement.unlocked_at),
        AuditEvent: col(AuditEvent.occurred_at),
    }
    if entity in immutable:
        return immutable[entity]
    revocable = {
        ApiKey: (col(ApiKey.revoked_at), col(ApiKey.created_at)),
        OAuthGrant: (col(OAuthGrant.revoked_at), col(OAuthGrant.created_at)),
        WebhookDelivery: (col(WebhookDelivery.last_attempt_at), col(WebhookDelivery.created_at)),
    }
    if entity in revocable:
        return func.coalesce(*revocable[entity])
    raise TypeError(f"no change time known for {entity!r}: add it to storage.queries._changed_at")


def changed_after(statement: Select, after: datetime) -> Select:
    """`statement`'s rows that were created or changed after `after`, oldest change first (ties by
    primary key, so paging is stable): the list's first selected entity decides which rows."""
    entity = statement.column_descriptions[0]["entity"]
    if entity is None:
        raise TypeError("changed_after needs a statement that selects an entity first")
    changed = _changed_at(entity)
    return (
        statement.where(changed > after)
        .order_by(None)
        .order_by(changed, *entity.__table__.primary_key.columns)
    )


async def fetch_page(db: Db, statement: Select, *, offset: int, limit: int) -> tuple[list, int]:
    """One page of `statement`'s scalar rows and the total count."""
    session = db.session
    rows = (await session.scalars(statement.offset(offset).limit(limit))).all()
    if offset == 0 and len(rows) < limit:
        return list(rows), len(rows)  # the page holds everything: no need to count
    return list(rows), await count(db, statement)


async def insert_new(db: Db, table: Any, rows: list[dict[str, Any]]) -> list[tuple]:
    """Insert `rows` into `table` (a SQLModel table class), skipping each one a primary key or
    unique constraint already holds (ON CONFLICT DO NOTHING): concurrent inserts of the same
    row cannot fail. Returns the primary keys of the rows actually inserted. Each row gives
    every column."""
    if not rows:
        return []
    statement = _insert_new_statement(db.dialect.name, table.__table__)
    # A learning day, an achievement or two; or a write that opened no session (a hot one).
    if len(rows) == 1 or db.opened_session is None:
        return [tuple(key.values()) for row in rows for key in await db.rows(statement, **row)]
    # The rows go as parameter sets, which SQLAlchemy batches into multi-row VALUES: a statement
    # per few hundred rows, not per row, and the statement compiled once per process.
    return [tuple(row) for row in (await db.session.execute(statement.statement, rows)).all()]


@cache
def _insert_new_statement(dialect: str, table: Any) -> PreparedQuery:
    primary_key = table.primary_key.columns
    return PreparedQuery(_INSERT_BY_DIALECT[dialect](table).on_conflict_do_nothing().returning(*primary_key))


def set_changes(row: Any, changes: Mapping[str, Any], *, at: datetime) -> None:
    """Set `changes` (column name to value) on `row`, a table model; if there are any, its
    `updated_at` becomes `at`. Written by the session's next flush."""
    for name, value in changes.items():
        setattr(row, name, value)
    if changes:
        row.updated_at = at


async def update_row(db: Db, *, row: Any, changes: Mapping[str, Any], at: datetime) -> None:
    """Set `changes` on `row`, a table model the session holds (`set_changes`), and flush them: a
    constraint the change breaks raises `ConstraintViolation` here. No change writes nothing."""
    session = db.session
    set_changes(row, changes, at=at)
    await session.flush()


async def add_row(db: Db, *, row: Any) -> None:
    """Insert `row`, a new table model, now: a constraint it breaks raises `ConstraintViolation` here."""
    session = db.session
    session.add(row)
    await session.flush()


async def delete_row(db: Db, *, row: Any) -> None:
    """Delete `row`, a table model the session holds, now; the database cascades to what hangs off it."""
    session = db.session
    await session.delete(row)
    await session.flush()
