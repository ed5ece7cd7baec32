"""The audit log in the store, and the names of the rows its records name by id (the dashboard shows those)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, delete, select
from sqlmodel import col

from storage.db import Db
from storage.ids import new_id
from storage.statements import PreparedQuery
from storage.tables import (
    ApiKey,
    AuditEvent,
    Category,
    Comment,
    Community,
    Course,
    Enrollment,
    Lesson,
    Media,
    Member,
    Producer,
    Section,
    Thread,
    User,
    WebhookEndpoint,
)

__all__ = [
    "NAMED_ID_PREFIXES",
    "audit_events_query",
    "audit_target_names",
    "insert_audit_event",
    "prune_audit_events",
]

_INSERT = PreparedQuery(AuditEvent.__table__.insert())


async def insert_audit_event(
    db: Db,
    *,
    producer_id: str,
    occurred_at: datetime,
    key_id: str | None,
    key_name: str | None,
    operation: str,
    target_ids: dict[str, str],
    outcome: str,
) -> None:
    """One audit record, in the session's transaction: a plain insert (no model to track), after
    the session's pending rows (the producer a record names may be one of them)."""
    await db.run(
        _INSERT,
        id=new_id("evt"),
        producer_id=producer_id,
        occurred_at=occurred_at,
        key_id=key_id,
        key_name=key_name,
        operation=operation,
        target_ids=target_ids,
        outcome=outcome,
    )


async def prune_audit_events(db: Db, *, producer_id: str, before: datetime) -> None:
    """Forget `producer_id`'s audit records older than `before` (the audit retention period)."""
    await db.session.execute(
        delete(AuditEvent).where(
            col(AuditEvent.producer_id) == producer_id, col(AuditEvent.occurred_at) < before
        )
    )


def audit_events_query(
    *,
    producer_id: str,
    operation: str | None = None,
    key_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: str | None = None,
) -> Select:
    """A producer's audit events, newest first, filtered."""
    statement = select(AuditEvent).where(col(AuditEvent.producer_id) == producer_id)
    if operation is not None:
        statement = statement.where(col(AuditEvent.operation) == operation)
    if key_id is not None:
        statement = statement.where(col(AuditEvent.key_id) == key_id)
    if outcome is not None:
        statement = statement.where(col(AuditEvent.outcome) == outcome)
    if since is not None:
        statement = statement.where(col(AuditEvent.occurred_at) >= since)
    if until is not None:
        statement = statement.where(col(AuditEvent.occurred_at) < until)
    return statement.order_by(col(AuditEvent.occurred_at).desc(), col(AuditEvent.id).desc())


def _named_by(prefix: str, producer_id: str, ids: list[str]) -> Select:
    """The (id, name) rows of the producer's `prefix` ids: one statement for all of them."""
    producers_communities = select(col(Community.id)).where(col(Community.producer_id) == producer_id)
    producers_courses = select(col(Course.id)).where(col(Course.producer_id) == producer_id)
    match prefix:
        case "user":
            return select(col(User.id), col(User.name)).where(
                col(User.producer_id) == producer_id, col(User.id).in_(ids)
            )
        case "course":
            return select(col(Course.id), col(Course.title)).where(
                col(Course.producer_id) == producer_id, col(Course.id).in_(ids)
            )
        case "section":
            return select(col(Section.id), col(Section.title)).where(
                col(Section.course_id).in_(producers_courses), col(Section.id).in_(ids)
            )
        case "lesson":
            return select(col(Lesson.id), col(Lesson.title)).where(
                col(Lesson.course_id).in_(producers_courses), col(Lesson.id).in_(ids)
            )
        case "enrollment":
            return (
                select(col(Enrollment.id), col(User.name) + " in " + Course.title)
                .join(User, col(User.id) == Enrollment.student_id)
                .join(Course, col(Course.id) == Enrollment.course_id)
                .where(col(Enrollment.producer_id) == producer_id, col(Enrollment.id).in_(ids))
            )
        case "comm":
            return select(col(Community.id), col(Community.name)).where(
                col(Community.producer_id) == producer_id, col(Community.id).in_(ids)
            )
        case "thread":
            return select(col(Thread.id), col(Thread.title)).where(
                col(Thread.community_id).in_(producers_communities), col(Thread.id).in_(ids)
            )
        case "cmt":
            return (
                select(col(Comment.id), "comment by " + col(User.name))
                .join(User, col(User.id) == Comment.author_id)
                .join(Thread, col(Thread.id) == Comment.thread_id)
                .where(col(Thread.community_id).in_(producers_communities), col(Comment.id).in_(ids))
            )
        case "mem":
            return (
                select(col(Member.id), col(User.name) + " in " + Community.name)
                .join(User, col(User.id) == Member.user_id)
                .join(Community, col(Community.id) == Member.community_id)
                .where(col(Community.producer_id) == producer_id, col(Member.id).in_(ids))
            )
        case "prod":  # the producer itself (its name), never another
            return select(col(Producer.id), col(Producer.name)).where(
                col(Producer.id) == producer_id, col(Producer.id).in_(ids)
            )
        case "cat":  # the platform's categories, the same for every producer
            return select(col(Category.id), col(Category.name)).where(col(Category.id).in_(ids))
        case "media":
            return select(col(Media.id), col(Media.title)).where(
                col(Media.community_id).in_(producers_communities), col(Media.id).in_(ids)
            )
        case "key":
            return select(col(ApiKey.id), col(ApiKey.name)).where(
                col(ApiKey.producer_id) == producer_id, col(ApiKey.id).in_(ids)
            )
        case "wh":
            return select(col(WebhookEndpoint.id), col(WebhookEndpoint.url)).where(
                col(WebhookEndpoint.producer_id) == producer_id, col(WebhookEndpoint.id).in_(ids)
            )
    raise ValueError(f"no names for {prefix!r} ids")


NAMED_ID_PREFIXES = (
    "prod",
    "user",
    "course",
    "section",
    "lesson",
    "enrollment",
    "cat",
    "comm",
    "mem",
    "thread",
    "cmt",
    "media",
    "key",
    "wh",
)
"""The kinds of id `audit_target_names` names, by their prefix (`storage.ids.new_id`): the school, students
and the owner, courses, their sections and lessons, enrollments, categories, communities, their
members, threads, comments and media, API keys and webhook endpoints. Other ids (sessions,
events) have no name to show."""


async def audit_target_names(db: Db, *, producer_id: str, ids: Iterable[str]) -> dict[str, str]:
    """The names or titles of the ids an audit page shows, those of `producer_id`'s rows that
    still exist: one statement per kind of id present (at most `len(NAMED_ID_PREFIXES)`), never
    one per id. An id of another producer, or of a row since deleted, is simply absent."""
    session = db.session
    by_prefix: dict[str, list[str]] = defaultdict(list)
    for value in set(ids):
        prefix = value.partition("_")[0]
        if prefix in NAMED_ID_PREFIXES:
            by_prefix[prefix].append(value)
    names: dict[str, str] = {}
    for prefix, wanted in sorted(by_prefix.items()):
        names.update(
            (row_id, name)
            for row_id, name in (await session.execute(_named_by(prefix, producer_id, sorted(wanted)))).all()
        )
    return names
