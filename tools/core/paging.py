"""Every list operation's page: one helper fetches, counts, converts and wraps the rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from storage.db import Db
from storage.queries import ListStatement, changed_after, fetch_page
from tools.core.models import Page, PageQuery, Pagination

__all__ = ["paged"]

ItemT = TypeVar("ItemT")


async def paged(
    db: Db,
    statement: ListStatement,
    *,
    query: PageQuery,
    convert: Callable[[Any], ItemT] | None = None,
    convert_page: Callable[[list[Any]], Awaitable[list[ItemT]]] | None = None,
) -> Page[ItemT]:
    """The page of `statement`'s rows that `query` asks for, as `{data, pagination}`; with
    `updatedAfter`, only the rows changed after it, oldest change first.

    Give exactly one of `convert`, which turns one row into its wire model, or `convert_page`,
    which turns the page's rows at once: a list whose items show related rows (authors, users,
    progress) loads them there in one statement for the whole page, never one per row.
    """
    if (convert is None) == (convert_page is None):
        raise TypeError("paged takes exactly one of convert and convert_page")
    if query.updated_after is not None:
        statement = changed_after(statement, query.updated_after)
    rows, total = await fetch_page(db, statement, offset=query.offset, limit=query.limit)
    if convert is not None:
        items = [convert(row) for row in rows]
    else:
        assert convert_page is not None, "checked above: exactly one of them"
        items = await convert_page(rows)
    total_pages = (total + query.limit - 1) // query.limit
    pagination = Pagination(
        page=query.page,
        limit=query.limit,
        total=total,
        total_pages=total_pages,
        has_more=query.page < total_pages,
    )
    return Page(data=items, pagination=pagination)
