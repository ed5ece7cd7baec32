"""erase_student: one transaction removes a student and every copy of their personal data.

The student gets everything a student can have (enrollments with progress, a certificate,
memberships, threads, comments, media, events, webhook deliveries, audit entries, an
idempotency record), is erased, and then every text and JSON column of every table is searched
for their name and email; on SQLite the database file and its WAL too.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import pytest
from sqlalchemy import JSON, String, Text, TypeDecorator, cast, func, or_, select, update
from sqlmodel import col

from storage import erasure as erasure_storage
from storage.engine import Store
from storage.erasure import DELETED_STUDENT_NAME
from storage.tables import (
    Comment,
    CommunityPoster,
    Event,
    IdempotencyRecord,
    Thread,
    UnansweredThread,
    User,
    WebhookDelivery,
    metadata,
)
from tests.support.community_factories import MEDIA, call, new_comment, new_community, new_thread, refuse
from tests.support.databases import sqlite_path
from tests.support.enrollment_factories import enroll, new_course, progress
from tests.support.factories import add_key, add_webhook, mcp_client, store_digest
from tests.support.rest import http_app, rest_client


@dataclass
class Erasable:
    student_id: str
    name: str
    email: str
    community_id: str
    own_thread_id: str
    others_thread_id: str
    other_student_id: str


async def _student_with_everything(store: Store, tenant, client) -> Erasable:
    token = secrets.token_hex(5)
    name, email = f"Quillon Vexmarrow {token}", f"Q.Vexmarrow.{token}@Example.com"
    registered = await call(
        client,
        "register_student",
        name=name,
        email=email,
        bio=f"{name} writes about herself",
        avatarUrl=f"https://cdn.example.com/{token}.png",
        idempotencyKey=f"register-{token}",
    )
    student_id = registered["student"]["id"]
    await call(client, "update_student", studentId=student_id, bio=f"About {name}")
    course_id, lessons = await new_course(client, lessons=1)
    enrollment = await enroll(client, student_id, course_id)
    await progress(client, enrollment["id"], lessons[0])  # completes the course: a certificate
    community = await new_community(client)
    other = (await call(client, "register_student", name="Other Person", email=f"other-{token}@example.com"))[
        "student"
    ]["id"]
    for user in (student_id, other):
        await call(client, "add_member", communityId=community["id"], userId=user)
    own = await new_thread(client, community["id"], student_id, title=f"Hello from {name}", content=email)
    await new_comment(client, community["id"], own["id"], other, content="Welcome!")
    others = await new_thread(client, community["id"], other, title="Question")
    mine = await new_comment(client, community["id"], others["id"], student_id, content=f"I am {name}")
    await new_comment(client, community["id"], others["id"], other, parent_id=mine["id"], content="Thanks")
    await call(client, "add_media", communityId=community["id"], userId=student_id, **MEDIA)
    async with store.writing() as db:  # a receiver that echoed the payload back, as some do
        await db.session.execute(
            update(WebhookDelivery).values(response_excerpt=f'{{"echo": "{name} <{email}>"}}')
        )
    return Erasable(student_id, name, email, community["id"], own["id"], others["id"], other)


async def _mentions(store: Store, *texts: str) -> list[str]:
    """`table.column` of every text or JSON value in the database that contains one of `texts`."""
    found = []
    async with store.sessions() as session:
        for table in metadata.sorted_tables:
            for column in table.columns:
                kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
                if not isinstance(
                    kind, String | JSON
                ):  # Text is a String; SQLModel's AutoString decorates one
                    continue
                as_text = cast(column, Text)
                matches = or_(*(as_text.contains(text, autoescape=True) for text in texts))
                if await session.scalar(select(func.count()).select_from(table).where(matches)):
                    found.append(f"{table.name}.{column.name}")
    return found


def _file_mentions(path: str, *texts: str) -> list[str]:
    found = []
    for file in (path, f"{path}-wal"):
        if os.path.exists(file):
            with open(file, "rb") as opened:
                content = opened.read()
            found += [f"{file}: {text}" for text in texts if text.encode() in content]
    return found


@pytest.mark.parametrize("posts", ["delete", "keep_anonymous"])
async def test_erasure_leaves_no_trace_of_the_name_or_email(store, tenant, posts):
    await add_webhook(store, tenant.producer_id)
    async with mcp_client(store, tenant.key) as client:
        student = await _student_with_everything(store, tenant, client)
        texts = (student.name, student.email, student.email.lower())
        assert {"users.name", "users.email", "threads.title", "events.data"} <= set(
            await _mentions(store, *texts)
        )
        erased = await call(
            client, "erase_student", studentId=student.student_id, confirm=student.email.lower(), posts=posts
        )
        assert erased == {
            "id": student.student_id,
            "erased": True,
            "posts": posts,
            "threads": 1,
            "comments": 1,
        }
        assert await _mentions(store, *texts) == []
        feed = await call(client, "list_events", types=["student.erased"])
        assert [event["data"] for event in feed["data"]] == [erased]
        missing = await refuse(client, "get_student", studentId=student.student_id)
        assert missing["error"] == "not_found"
        others_thread = await call(
            client, "get_thread", communityId=student.community_id, threadId=student.others_thread_id
        )
        if posts == "delete":  # their comment went with the reply under it; their thread with its comment
            assert others_thread["thread"]["comments"] == [] and others_thread["thread"]["commentCount"] == 0
            gone = await refuse(
                client, "get_thread", communityId=student.community_id, threadId=student.own_thread_id
            )
            assert gone["error"] == "not_found"
        else:
            [kept] = others_thread["thread"]["comments"]
            assert kept["author"]["name"] == DELETED_STUDENT_NAME and kept["author"]["avatarUrl"] is None
            assert [reply["content"] for reply in kept["replies"]] == ["Thanks"]
            own = await call(
                client, "get_thread", communityId=student.community_id, threadId=student.own_thread_id
            )
            assert own["thread"]["author"]["name"] == DELETED_STUDENT_NAME
            refused = await refuse(
                client,
                "create_thread",
                communityId=student.community_id,
                userId=kept["author"]["id"],
                title="Impostor",
                content="x",
            )
            assert refused["error"] == "forbidden"
    if store.dialect.name == "sqlite":
        await store.checkpoint()
        assert _file_mentions(sqlite_path(store.url), *texts) == []


async def test_kept_posts_keep_the_rollups_equal_to_a_recount(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student = await _student_with_everything(store, tenant, client)
        await call(
            client,
            "erase_student",
            studentId=student.student_id,
            confirm=student.student_id,
            posts="keep_anonymous",
        )
    async with store.sessions() as session:
        posters = {
            (row.community_id, row.user_id): (row.threads, row.comments)
            for row in (await session.scalars(select(CommunityPoster))).all()
        }
        recount: dict[tuple[str, str], list[int]] = {}
        for thread in (await session.scalars(select(Thread))).all():
            recount.setdefault((thread.community_id, thread.author_id), [0, 0])[0] += 1
        for comment, community_id in (
            await session.execute(select(Comment, col(Thread.community_id)).join(Thread))
        ).all():
            recount.setdefault((community_id, comment.author_id), [0, 0])[1] += 1
        unanswered = set(await session.scalars(select(col(UnansweredThread.thread_id))))
    assert posters == {key: tuple(value) for key, value in recount.items()}
    assert student.own_thread_id not in unanswered  # the other student answered it


async def test_a_wrong_confirmation_erases_nothing(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student = await _student_with_everything(store, tenant, client)
        before = await store_digest(store)
        refused = await refuse(
            client, "erase_student", studentId=student.student_id, confirm="someone@else.com", posts="delete"
        )
    assert refused["error"] == "unprocessable" and "confirm" in refused["message"]
    assert await store_digest(store) == before


async def test_an_erasure_failing_half_way_leaves_everything_as_it_was(store, tenant, monkeypatch):
    async with mcp_client(store, tenant.key) as client:
        student = await _student_with_everything(store, tenant, client)
        before = await store_digest(store)

        async def fails(*args, **kwargs):  # after the posts, the user row and the events are done
            raise RuntimeError("disk gone")

        monkeypatch.setattr(erasure_storage, "_scrub_deliveries", fails)
        refused = await refuse(
            client, "erase_student", studentId=student.student_id, confirm=student.email, posts="delete"
        )
    assert refused["error"] == "internal_error"
    after = await store_digest(store)
    assert after == before or await _audit_only_difference(store, before)


async def _audit_only_difference(store: Store, before: str) -> bool:
    """The failed call is audited in a transaction of its own: take that one record out and compare."""
    from storage.tables import AuditEvent

    async with store.writing() as db:
        await db.session.execute(
            AuditEvent.__table__.delete().where(AuditEvent.__table__.c.operation == "erase_student")
        )
    return await store_digest(store) == before


async def test_a_students_read_key_does_not_see_the_tool(store, tenant):
    reader = await add_key(store, tenant, ["students:read"])
    async with mcp_client(store, reader) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert "get_student" in names and "erase_student" not in names


async def test_another_producers_student_is_not_found(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        theirs = await call(client, "register_student", name="Their Student", email="theirs@example.com")
    async with mcp_client(store, tenant.key) as client:
        refused = await refuse(
            client,
            "erase_student",
            studentId=theirs["student"]["id"],
            confirm="theirs@example.com",
            posts="delete",
        )
    assert refused["error"] == "not_found"
    async with store.sessions() as session:
        assert await session.get(User, theirs["student"]["id"]) is not None


async def test_rest_erases_with_post_to_the_erase_path(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student = await call(client, "register_student", name="Rest Student", email="rest@example.com")
    student_id = student["student"]["id"]
    async with rest_client(http_app(store), tenant.key) as http:
        wrong = await http.post(
            f"/students/{student_id}/erase",
            json={"confirm": "nope", "posts": "delete"},
        )
        assert wrong.status_code == 422 and "confirm" in wrong.json()["message"]
        done = await http.post(
            f"/students/{student_id}/erase",
            json={"confirm": "REST@example.com", "posts": "keep_anonymous"},
        )
    assert done.status_code == 200 and done.json()["erased"] is True


async def test_deleting_a_thread_or_comment_removes_its_content_from_the_feed(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        author = (await call(client, "register_student", name="Poster", email="poster@example.com"))[
            "student"
        ]["id"]
        await call(client, "add_member", communityId=community["id"], userId=author)
        thread = await new_thread(client, community["id"], author, title="Secret plans", content="The plan")
        kept = await new_thread(client, community["id"], author, title="Public notes", content="Notes")
        comment = await new_comment(client, community["id"], kept["id"], author, content="Private remark")
        await call(client, "delete_thread", communityId=community["id"], threadId=thread["id"])
        await call(
            client,
            "delete_comment",
            communityId=community["id"],
            threadId=kept["id"],
            commentId=comment["id"],
        )
    async with store.sessions() as session:
        events = (
            await session.scalars(
                select(Event).where(col(Event.type).in_(["thread.created", "comment.created"]))
            )
        ).all()
    by_id = {event.data["id"]: event.data for event in events}
    assert by_id[thread["id"]] == {"id": thread["id"], "communityId": community["id"], "redacted": True}
    assert by_id[comment["id"]]["redacted"] is True and "content" not in by_id[comment["id"]]
    assert by_id[kept["id"]]["title"] == "Public notes"  # what still exists stays as it was


async def test_a_retry_of_the_erased_students_registration_does_not_bring_them_back(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        arguments = {"name": "Once Only", "email": "once@example.com", "idempotencyKey": "reg-once"}
        first = await call(client, "register_student", **arguments)
        await call(
            client,
            "erase_student",
            studentId=first["student"]["id"],
            confirm="once@example.com",
            posts="delete",
        )
        retry = await refuse(client, "register_student", **arguments)
    assert retry["error"] == "conflict"
    async with store.sessions() as session:
        [record] = (await session.scalars(select(IdempotencyRecord))).all()
    assert "once@example.com" not in str(record.result) and "Once Only" not in str(record.result)
