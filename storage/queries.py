"""Query helpers whose SQL differs between engines, kept here so operations stay engine-neutral."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["contains_text", "count", "fetch_page"]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_text(column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match (ILIKE on PostgreSQL, lower() LIKE lower() on SQLite)."""
    return column.ilike(f"%{_escape_like(text)}%", escape="\\")


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
