"""Platform-wide reference data: categories."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.tables import Category

__all__ = ["get_category", "list_categories"]


async def list_categories(session: AsyncSession) -> Sequence[Category]:
    return (await session.scalars(select(Category).order_by(col(Category.order), col(Category.name)))).all()


async def get_category(session: AsyncSession, *, category_id: str) -> Category | None:
    return await session.get(Category, category_id)
