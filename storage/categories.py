"""Platform-wide reference data: categories."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import col

from storage.db import Db
from storage.tables import Category

__all__ = ["get_category", "list_categories"]


async def list_categories(db: Db) -> Sequence[Category]:
    session = db.session
    return (await session.scalars(select(Category).order_by(col(Category.order), col(Category.name)))).all()


async def get_category(db: Db, *, category_id: str) -> Category | None:
    session = db.session
    return await session.get(Category, category_id)
