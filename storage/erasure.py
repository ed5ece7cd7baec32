"""Erasing a student (GDPR article 17) and removing deleted posts' content from the event feed.

`erase_student` runs in the caller's one write transaction (`tools.domains.erasure`): it commits
whole or not at all. In order:

1. Their threads and comments are deleted (with the replies under them, as `delete_comment`
   does), or kept and re-pointed to the producer's "Deleted student" user (`deleted_student`):
   a `bot` user, never listed as a student, that nobody can post as. Re-pointing rather than a
   null author keeps `author_id NOT NULL` (no migration) and every reader's join; the rollups of
   migration 0017 have no trigger on an author change, so the student's `community_posters`
   counts are moved to that user here, and a thread that becomes its own author's only
   conversation (two erased students) is unanswered again, as a recount would say.
2. The users row goes; the database cascades to their enrollments, lesson progress,
   certificates, achievements, learning days, memberships, uploaded media, sign-ins, OAuth grants.
3. The student's name, email, bio and avatar URL are scrubbed from what keeps copies: event
   payloads (and the names events and audit records keep of who acted), idempotency records'
   results, webhook delivery records (a receiver's response excerpt or error may echo a
   payload). Ids stay: random, they name no one once the profile is gone, and a webhook consumer
   needs the id of `student.erased` to erase its own copy.
4. Events of threads, comments and media that no longer exist keep only their ids
   (`redact_removed_content`); `delete_thread` and `delete_comment` call it too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Text, cast, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from storage.communities import delete_comment_tree
from storage.db import Db
from storage.ids import new_id
from storage.queries import delete_row
from storage.tables import (
    AuditEvent,
    Comment,
    Community,
    CommunityPoster,
    Event,
    IdempotencyRecord,
    Media,
    Thread,
    UnansweredThread,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "DELETED_STUDENT_EMAIL",
    "DELETED_STUDENT_NAME",
    "ErasedPosts",
    "PostsChoice",
    "deleted_student",
    "erase_student",
    "redact_removed_content",
]

DELETED_STUDENT_NAME = "Deleted student"
DELETED_STUDENT_EMAIL = "deleted-student@erased.invalid"
"""The email of each producer's "Deleted student" user (unique per producer, like every email):
how it is found, and why nobody may post as it."""
ERASED_TEXT = "[erased]"
"""What stands where an erased student's email was inside a longer text."""

PostsChoice = Literal["delete", "keep_anonymous"]

_CONTENT_EVENTS = {"thread": Thread, "comment": Comment, "media": Media}
"""Event types by resource whose payload is user-written content, and the table that holds it."""


@dataclass(frozen=True)
class ErasedPosts:
    threads: int
    comments: int


@dataclass(frozen=True)
class _Personal:
    """What identifies the erased student, to find and replace in stored copies."""

    name: str
    email: str
    exact: frozenset[str]
    """Values replaced wherever they are a whole string: name, email, bio, avatar URL."""

    @classmethod
    def of(cls, user: User) -> _Personal:
        values = {user.name, user.email, user.email_normalized, user.bio, user.avatar_url}
        return cls(name=user.name, email=user.email, exact=frozenset(v for v in values if v))

    @property
    def needles(self) -> list[str]:
        """Texts a stored JSON holding any of them contains, as JSON spells them (escaped)."""
        return sorted({json.dumps(value)[1:-1] for value in self.exact})

    def scrub(self, value: Any) -> Any:
        """`value` (JSON) with each of the student's values replaced: the name by
        `DELETED_STUDENT_NAME`, the others by null; the email inside a longer text by `ERASED_TEXT`."""
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, str):
            if value == self.name:
                return DELETED_STUDENT_NAME
            if value in self.exact:
                return None
            return self.scrub_text(value)
        return value

    def scrub_text(self, text: str) -> str:
        for value in sorted(self.exact, key=len, reverse=True):
            if len(value) >= 6 or "@" in value:  # a short name would hit others' words
                text = re.sub(re.escape(value), ERASED_TEXT, text, flags=re.IGNORECASE)
        return text


async def deleted_student(db: Db, *, producer_id: str, at: datetime) -> User:
    """The producer's "Deleted student" user, made on its first erasure that keeps posts."""
    session = db.session
    found = (
        await session.scalars(
            select(User).where(
                col(User.producer_id) == producer_id, col(User.email_normalized) == DELETED_STUDENT_EMAIL
            )
        )
    ).first()
    if found is not None:
        return found
    user = User(
        id=new_id("user"),
        producer_id=producer_id,
        name=DELETED_STUDENT_NAME,
        email=DELETED_STUDENT_EMAIL,
        email_normalized=DELETED_STUDENT_EMAIL,
        role="bot",
        created_at=at,
        updated_at=at,
    )
    session.add(user)
    await session.flush()
    return user


async def erase_student(
    db: Db, *, producer_id: str, student: User, posts: PostsChoice, at: datetime
) -> ErasedPosts:
    """Erase `student` of `producer_id` everywhere (see the module's docstring), in this transaction."""
    personal = _Personal.of(student)
    counted = await _count_posts(db, student_id=student.id)
    if posts == "delete":
        await _delete_posts(db, student_id=student.id)
    else:
        tombstone = await deleted_student(db, producer_id=producer_id, at=at)
        await _move_posts(
            db, student_id=student.id, to=tombstone.id, producer_id=producer_id, personal=personal
        )
    await delete_row(db, row=student)  # the database cascades to everything of theirs
    await redact_removed_content(db, producer_id=producer_id)
    await _scrub_events(db, producer_id=producer_id, student_id=student.id, personal=personal)
    await _scrub_idempotency_records(db, producer_id=producer_id, personal=personal)
    await _scrub_deliveries(db, producer_id=producer_id, personal=personal)
    await _scrub_audit(db, producer_id=producer_id, personal=personal)
    return counted


async def _count_posts(db: Db, *, student_id: str) -> ErasedPosts:
    session = db.session
    threads = await session.scalar(select(func.count()).where(col(Thread.author_id) == student_id))
    comments = await session.scalar(select(func.count()).where(col(Comment.author_id) == student_id))
    return ErasedPosts(threads=threads or 0, comments=comments or 0)


async def _delete_posts(db: Db, *, student_id: str) -> None:
    """Their threads (with every comment on them), then their other comments with the replies
    under them; the threads that lost comments are recounted."""
    session = db.session
    await session.execute(
        delete(Thread).where(col(Thread.author_id) == student_id).execution_options(synchronize_session=False)
    )
    left = (
        await session.execute(
            select(col(Comment.id), col(Comment.thread_id)).where(col(Comment.author_id) == student_id)
        )
    ).all()
    for comment_id, _ in left:  # a reply of theirs may have gone with an earlier subtree: no matter
        await delete_comment_tree(db, comment_id=comment_id)
    for thread_id in {thread_id for _, thread_id in left}:
        remaining = select(func.count()).where(col(Comment.thread_id) == thread_id).scalar_subquery()
        await session.execute(
            update(Thread).where(col(Thread.id) == thread_id).values(comment_count=remaining)
        )


async def _move_posts(db: Db, *, student_id: str, to: str, producer_id: str, personal: _Personal) -> None:
    """Re-point their threads and comments to the "Deleted student" user `to`, and their
    community_posters counts with them; their name and email inside the text they wrote become
    `ERASED_TEXT` (a kept post signed with the name would still say whose it was)."""
    session = db.session
    insert = postgresql_insert if db.dialect.name == "postgresql" else sqlite_insert
    counts = (
        await session.execute(
            select(
                col(CommunityPoster.community_id),
                col(CommunityPoster.threads),
                col(CommunityPoster.comments),
                col(CommunityPoster.posts),
            ).where(col(CommunityPoster.user_id) == student_id)
        )
    ).all()
    for community_id, threads, comments, posts in counts:
        statement = insert(CommunityPoster).values(
            community_id=community_id, user_id=to, threads=threads, comments=comments, posts=posts
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["community_id", "user_id"],
                set_={
                    "threads": CommunityPoster.__table__.c.threads + statement.excluded.threads,
                    "comments": CommunityPoster.__table__.c.comments + statement.excluded.comments,
                    "posts": CommunityPoster.__table__.c.posts + statement.excluded.posts,
                },
            )
        )
    await session.execute(delete(CommunityPoster).where(col(CommunityPoster.user_id) == student_id))
    for thread in (await session.scalars(select(Thread).where(col(Thread.author_id) == student_id))).all():
        thread.author_id = to
        thread.title, thread.content = personal.scrub_text(thread.title), personal.scrub_text(thread.content)
    for comment in (await session.scalars(select(Comment).where(col(Comment.author_id) == student_id))).all():
        comment.author_id, comment.content = to, personal.scrub_text(comment.content)
    await session.flush()
    # A thread of one erased student answered only by another is now answered by no one else.
    answered = exists().where(col(Comment.thread_id) == Thread.id, col(Comment.author_id) != Thread.author_id)
    unanswered = select(col(Thread.id), col(Thread.community_id), col(Thread.created_at)).where(
        col(Thread.author_id) == to,
        col(Thread.community_id).in_(
            select(col(Community.id)).where(col(Community.producer_id) == producer_id)
        ),
        ~answered,
    )
    await session.execute(
        insert(UnansweredThread)
        .from_select(["thread_id", "community_id", "created_at"], unanswered)
        .on_conflict_do_nothing(index_elements=["thread_id"])
    )


def _producer_events(producer_id: str):
    return select(Event).where(col(Event.producer_id) == producer_id)


def _contains_any(column: Any, needles: Iterable[str]) -> Any:
    return or_(*(cast(column, Text).contains(needle, autoescape=True) for needle in needles))


async def redact_removed_content(db: Db, *, producer_id: str, community_id: str | None = None) -> None:
    """Reduce to their ids the payloads of `producer_id`'s thread, comment and media events
    (of one community, if given) whose resource no longer exists: a deleted post's title and
    text leave the feed with it, not when the retention period ends."""
    session = db.session
    types = [f"{resource}.{verb}" for resource in _CONTENT_EVENTS for verb in ("created", "updated", "added")]
    statement = _producer_events(producer_id).where(col(Event.type).in_(types))
    if community_id is not None:
        statement = statement.where(col(Event.community_id) == community_id)
    events = [event for event in (await session.scalars(statement)).all() if not event.data.get("redacted")]
    for resource, table in _CONTENT_EVENTS.items():
        mine = [event for event in events if event.type.startswith(f"{resource}.")]
        ids = {event.data.get("id") for event in mine}
        present = set(await session.scalars(select(col(table.id)).where(col(table.id).in_(ids))))
        for event in mine:
            if event.data.get("id") not in present:
                event.data = _ids_only(event.data)
    await session.flush()


def _ids_only(data: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in data.items() if key == "id" or key.endswith("Id")}
    return kept | {"redacted": True}


async def _scrub_events(db: Db, *, producer_id: str, student_id: str, personal: _Personal) -> None:
    session = db.session
    mentions = or_(
        col(Event.student_id) == student_id,
        col(Event.key_name).in_(personal.exact),
        _contains_any(Event.data, personal.needles),
    )
    for event in (await session.scalars(_producer_events(producer_id).where(mentions))).all():
        event.data = personal.scrub(event.data)
        if event.key_name in personal.exact:
            event.key_name = DELETED_STUDENT_NAME
    await session.flush()


async def _scrub_idempotency_records(db: Db, *, producer_id: str, personal: _Personal) -> None:
    """Scrubbed, not deleted: a retry under the key still finds the create done (and answers that
    what it made is gone) instead of registering the erased student again."""
    session = db.session
    records = await session.scalars(
        select(IdempotencyRecord).where(
            col(IdempotencyRecord.producer_id) == producer_id,
            _contains_any(IdempotencyRecord.result, personal.needles),
        )
    )
    for record in records.all():
        record.result = personal.scrub(record.result)
    await session.flush()


async def _scrub_deliveries(db: Db, *, producer_id: str, personal: _Personal) -> None:
    session = db.session
    endpoints = select(col(WebhookEndpoint.id)).where(col(WebhookEndpoint.producer_id) == producer_id)
    texts = [col(WebhookDelivery.response_excerpt), col(WebhookDelivery.error)]
    mentions = or_(
        *(column.icontains(needle, autoescape=True) for column in texts for needle in personal.exact)
    )
    deliveries = await session.scalars(
        select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id).in_(endpoints), mentions)
    )
    for delivery in deliveries.all():
        if delivery.response_excerpt:
            delivery.response_excerpt = personal.scrub_text(delivery.response_excerpt)
        if delivery.error:
            delivery.error = personal.scrub_text(delivery.error)
    await session.flush()


async def _scrub_audit(db: Db, *, producer_id: str, personal: _Personal) -> None:
    """Audit records keep ids only (`tools.core.audit`); the name of who acted may be theirs."""
    await db.session.execute(
        update(AuditEvent)
        .where(col(AuditEvent.producer_id) == producer_id, col(AuditEvent.key_name).in_(personal.exact))
        .values(key_name=DELETED_STUDENT_NAME)
        .execution_options(synchronize_session=False)
    )
