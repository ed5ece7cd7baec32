"""Test data for communities and discussions: through the tools, or in bulk straight into the store."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from mcp import Client
from sqlalchemy import func, insert, select, update
from sqlmodel import col

from storage.engine import Store
from storage.ids import utcnow
from storage.tables import Comment, Community, Media, Member, Thread
from tests.support.factories import error, ok

MEDIA = {
    "type": "video",
    "title": "Welcome call",
    "url": "https://cdn.example.com/welcome.mp4",
    "fileName": "welcome.mp4",
    "fileSize": 1_048_576,
}
"""A valid add_media body (without communityId and userId)."""


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The structured result of a tool call that must succeed."""
    return ok(await client.call_tool(tool, arguments))


async def refuse(client: Client, tool: str, **arguments: Any) -> dict[str, str]:
    """The `{error, message}` of a tool call that must fail."""
    return error(await client.call_tool(tool, arguments))


async def new_community(client: Client, **fields: Any) -> dict[str, Any]:
    fields = {"name": "Weekly Wins", "slug": f"weekly-wins-{secrets.token_hex(4)}", **fields}
    return (await call(client, "create_community", **fields))["community"]


async def new_student(client: Client, name: str = "Jane Smith") -> str:
    """A student of the client's producer (not a member of anything); returns the user id."""
    email = f"student-{secrets.token_hex(4)}@example.com"
    result = await call(client, "register_student", name=name, email=email, password="student-pass-1")
    return result["student"]["id"]


async def new_thread(client: Client, community_id: str, user_id: str, **fields: Any) -> dict[str, Any]:
    fields = {"title": "Introduce yourself", "content": "Who are you?", **fields}
    return (await call(client, "create_thread", communityId=community_id, userId=user_id, **fields))["thread"]


async def new_comment(
    client: Client,
    community_id: str,
    thread_id: str,
    user_id: str,
    *,
    parent_id: str | None = None,
    content: str = "Hi",
) -> dict[str, Any]:
    arguments: dict[str, Any] = {"communityId": community_id, "threadId": thread_id, "userId": user_id}
    arguments["content"] = content
    if parent_id is not None:
        arguments["parentId"] = parent_id
    return (await call(client, "create_comment", **arguments))["comment"]


async def insert_comments(
    store: Store, *, thread_id: str, author_id: str, parents: list[int | None]
) -> list[str]:
    """Insert len(parents) comments in one statement; parents[i] is the index of comment i's parent
    (None: top level; always an earlier index). Returns the new ids, in order, oldest first."""
    start = utcnow()
    batch = secrets.token_hex(4)
    ids = [f"cmt_{batch}{i:06d}" for i in range(len(parents))]
    rows = [
        {
            "id": ids[i],
            "thread_id": thread_id,
            "parent_id": None if parent is None else ids[parent],
            "author_id": author_id,
            "content": f"comment {i}",
            "created_at": start + timedelta(microseconds=i),
            "updated_at": start + timedelta(microseconds=i),
        }
        for i, parent in enumerate(parents)
    ]
    async with store.writing() as db:
        await db.session.execute(insert(Comment), rows)
        await db.session.execute(
            update(Thread).where(col(Thread.id) == thread_id).values(comment_count=len(rows))
        )
    return ids


async def row_counts(store: Store) -> dict[str, int]:
    """How many rows each community table holds, to see what a failed or cascading call left."""
    counts = {}
    async with store.sessions() as session:
        for table in (Community, Member, Thread, Comment, Media):
            counts[table.__tablename__] = (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
    return counts
