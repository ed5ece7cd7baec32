"""The audit log in the store, and the names of the rows its records name by id (the dashboard shows those)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import direct
from storage.fast import Query
from storage.ids import new_id
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

__all__ = ["NAMED_ID_PREFIXES", "audit_events_query", "audit_target_names", "insert_audit_event"]

_INSERT = Query(AuditEvent.__table__.insert())


async def insert_audit_event(
    session: AsyncSession | direct.Transaction,
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
    await direct.run(
        session,
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
    statement = select(AuditEvent).where(AuditEvent.producer_id == producer_id)
    if operation is not None:
        statement = statement.where(AuditEvent.operation == operation)
    if key_id is not None:
        statement = statement.where(AuditEvent.key_id == key_id)
    if outcome is not None:
        statement = statement.where(AuditEvent.outcome == outcome)
    if since is not None:
        statement = statement.where(AuditEvent.occurred_at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.occurred_at < until)
    return statement.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())


def _named_by(prefix: str, producer_id: str, ids: list[str]) -> Select:
    """The (id, name) rows of the producer's `prefix` ids: one statement for all of them."""
    producers_communities = select(Community.id).where(Community.producer_id == producer_id)
    producers_courses = select(Course.id).where(Course.producer_id == producer_id)
    match prefix:
        case "user":
            return select(User.id, User.name).where(User.producer_id == producer_id, User.id.in_(ids))
        case "course":
            return select(Course.id, Course.title).where(
                Course.producer_id == producer_id, Course.id.in_(ids)
            )
        case "section":
            return select(Section.id, Section.title).where(
                Section.course_id.in_(producers_courses), Section.id.in_(ids)
            )
        case "lesson":
            return select(Lesson.id, Lesson.title).where(
                Lesson.course_id.in_(producers_courses), Lesson.id.in_(ids)
            )
        case "enrollment":
            return (
                select(Enrollment.id, User.name + " in " + Course.title)
                .join(User, User.id == Enrollment.student_id)
                .join(Course, Course.id == Enrollment.course_id)
                .where(Enrollment.producer_id == producer_id, Enrollment.id.in_(ids))
            )
        case "comm":
            return select(Community.id, Community.name).where(
                Community.producer_id == producer_id, Community.id.in_(ids)
            )
        case "thread":
            return select(Thread.id, Thread.title).where(
                Thread.community_id.in_(producers_communities), Thread.id.in_(ids)
            )
        case "cmt":
            return (
                select(Comment.id, "comment by " + User.name)
                .join(User, User.id == Comment.author_id)
                .join(Thread, Thread.id == Comment.thread_id)
                .where(Thread.community_id.in_(producers_communities), Comment.id.in_(ids))
            )
        case "mem":
            return (
                select(Member.id, User.name + " in " + Community.name)
                .join(User, User.id == Member.user_id)
                .join(Community, Community.id == Member.community_id)
                .where(Community.producer_id == producer_id, Member.id.in_(ids))
            )
        case "prod":  # the producer itself (its name), never another
            return select(Producer.id, Producer.name).where(Producer.id == producer_id, Producer.id.in_(ids))
        case "cat":  # the platform's categories, the same for every producer
            return select(Category.id, Category.name).where(Category.id.in_(ids))
        case "media":
            return select(Media.id, Media.title).where(
                Media.community_id.in_(producers_communities), Media.id.in_(ids)
            )
        case "key":
            return select(ApiKey.id, ApiKey.name).where(ApiKey.producer_id == producer_id, ApiKey.id.in_(ids))
        case "wh":
            return select(WebhookEndpoint.id, WebhookEndpoint.url).where(
                WebhookEndpoint.producer_id == producer_id, WebhookEndpoint.id.in_(ids)
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


async def audit_target_names(
    session: AsyncSession, *, producer_id: str, ids: Iterable[str]
) -> dict[str, str]:
    """The names or titles of the ids an audit page shows, those of `producer_id`'s rows that
    still exist: one statement per kind of id present (at most `len(NAMED_ID_PREFIXES)`), never
    one per id. An id of another producer, or of a row since deleted, is simply absent."""
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
