"""Query helpers whose SQL differs between engines, kept here so operations stay engine-neutral."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Row, Select, UniqueConstraint, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.search import NameContains
from storage.tables import User, metadata

__all__ = ["contains_text", "count", "fetch_page", "insert_new", "violated_constraint"]

_INSERT_BY_DIALECT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_text(column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match (ILIKE on PostgreSQL, lower() LIKE lower() on SQLite),
    using the trigram name index for `users.name` (see `storage.search`)."""
    like = column.ilike(f"%{_escape_like(text)}%", escape="\\")
    return NameContains(column, text, like) if column is User.name else like


async def count(session: AsyncSession, statement: Select) -> int:
    """The number of rows `statement` would return."""
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    return (await session.execute(counted)).scalar_one()


async def fetch_page(session: AsyncSession, statement: Select, *, offset: int, limit: int) -> tuple[list, int]:
    """One page of `statement`'s scalar rows and the total count."""
    rows = (await session.scalars(statement.offset(offset).limit(limit))).all()
    if offset == 0 and len(rows) < limit:
        return list(rows), len(rows)  # the page holds everything: no need to count
    return list(rows), await count(session, statement)


async def insert_new(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> list[Row]:
    """Insert `rows` into `table` (a SQLModel table class), skipping each one a primary key or
    unique constraint already holds (ON CONFLICT DO NOTHING): concurrent inserts of the same
    row cannot fail. Returns the primary keys of the rows actually inserted."""
    if not rows:
        return []
    insert = _INSERT_BY_DIALECT[session.get_bind().dialect.name]
    primary_key = table.__table__.primary_key.columns
    statement = insert(table).values(rows).on_conflict_do_nothing().returning(*primary_key)
    return list((await session.execute(statement)).all())


_SQLITE_CHECK = "CHECK constraint failed: "
_SQLITE_UNIQUE = "UNIQUE constraint failed: "


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint or unique index that refused a write, or None where the
    database does not tell (an unnamed one, a foreign key on SQLite).

    PostgreSQL names it; SQLite names a CHECK but lists a unique index's columns
    (`UNIQUE constraint failed: users.email_normalized`), which name it within its table."""
    named = getattr(error.orig.__cause__, "constraint_name", None)  # asyncpg, under SQLAlchemy's adapter
    if named:
        return named
    message = str(error.orig)
    if message.startswith(_SQLITE_CHECK):
        return message.removeprefix(_SQLITE_CHECK)
    if not message.startswith(_SQLITE_UNIQUE):
        return None
    qualified = [name.split(".", 1) for name in message.removeprefix(_SQLITE_UNIQUE).split(", ")]
    table = metadata.tables.get(qualified[0][0])
    if table is None:
        return None
    columns = {column for _, column in qualified}
    uniques = [index for index in table.indexes if index.unique]
    uniques += [constraint for constraint in table.constraints if isinstance(constraint, UniqueConstraint)]
    return next((unique.name for unique in uniques if {c.name for c in unique.columns} == columns), None)
