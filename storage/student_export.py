"""Everything the store holds about one student, for `export_student`: a fixed number of
statements (`EXPORT_STATEMENTS`), each bounded by `EXPORT_LIMIT` rows.

Every statement but the audit log's and the event feed's walks an index from the student's id:
enrollments (the unique (student, course) index), their lesson progress (its primary key), learning
days and achievements (primary keys), memberships, threads, comments and media (their author and
user indexes). The audit log and the feed have no index on the ids their JSON holds: those two scan
the producer's records (their `producer_id` index), matching the student's id in the JSON's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import String, bindparam, cast, or_, select
from sqlmodel import col

from storage.db import Db
from storage.statements import PreparedQuery
from storage.students import student_with_learning_days
from storage.tables import (
    Achievement,
    AuditEvent,
    Certificate,
    Comment,
    Community,
    Course,
    Enrollment,
    Event,
    Lesson,
    LessonProgress,
    Media,
    Member,
    Section,
    Thread,
)

__all__ = ["EXPORT_LIMIT", "EXPORT_STATEMENTS", "StudentRecords", "student_records"]

EXPORT_LIMIT = 1000
"""Rows one part of an export holds at most (lesson progress: `10 * EXPORT_LIMIT`); a part that
had more is named in `StudentRecords.truncated`, its newest rows kept (audit and events) or its
oldest (the others, in the order they were made)."""
_PROGRESS_LIMIT = 10 * EXPORT_LIMIT

EXPORT_STATEMENTS = 10
"""The statements `student_records` runs for a student who exists: the profile with its learning
days, then one per part (enrollments with their certificates, lesson progress, achievements,
memberships, threads, comments, media, audit entries, events)."""

_STUDENT = bindparam("student_id")
_PRODUCER = bindparam("producer_id")


def _quoted_id_in(json_column: Any) -> Any:
    """The JSON column's text holds `"<student id>"`: an id value anywhere in it (ids hold only
    letters, digits, `_` and `-`, so JSON never escapes them; `_` is escaped for LIKE)."""
    pattern = bindparam("quoted_pattern")
    return cast(json_column, String).like(pattern, escape="\\")


_ENROLLMENTS = PreparedQuery(
    select(
        col(Enrollment.id).label("id"),
        col(Enrollment.course_id).label("course_id"),
        col(Course.title).label("course_title"),
        col(Course.slug).label("course_slug"),
        col(Enrollment.enrolled_at).label("enrolled_at"),
        col(Enrollment.completed_at).label("completed_at"),
        col(Enrollment.updated_at).label("updated_at"),
        col(Enrollment.lessons_completed).label("completed_lessons"),
        col(Certificate.id).label("certificate_id"),
        col(Certificate.verification_code).label("verification_code"),
        col(Certificate.issued_at).label("issued_at"),
    )
    .join(Course, col(Course.id) == Enrollment.course_id)
    .outerjoin(Certificate, col(Certificate.enrollment_id) == Enrollment.id)
    .where(col(Enrollment.student_id) == _STUDENT, col(Enrollment.producer_id) == _PRODUCER)
    .order_by(col(Enrollment.enrolled_at), col(Enrollment.id))
    .limit(EXPORT_LIMIT + 1)
)
_PROGRESS = PreparedQuery(
    select(
        col(LessonProgress.enrollment_id).label("enrollment_id"),
        col(LessonProgress.lesson_id).label("lesson_id"),
        col(Lesson.title).label("title"),
        col(LessonProgress.completed).label("completed"),
        col(LessonProgress.watched_seconds).label("watched_seconds"),
        col(LessonProgress.completed_at).label("completed_at"),
    )
    .join(Enrollment, col(Enrollment.id) == LessonProgress.enrollment_id)
    .join(Lesson, col(Lesson.id) == LessonProgress.lesson_id)
    .join(Section, col(Section.id) == Lesson.section_id)
    .where(col(Enrollment.student_id) == _STUDENT, col(Enrollment.producer_id) == _PRODUCER)
    .order_by(col(Enrollment.enrolled_at), col(Enrollment.id), col(Section.order), col(Lesson.order))
    .limit(_PROGRESS_LIMIT + 1)
)
_ACHIEVEMENTS = PreparedQuery(
    select(col(Achievement.code).label("code"), col(Achievement.unlocked_at).label("unlocked_at"))
    .where(col(Achievement.student_id) == _STUDENT)
    .order_by(col(Achievement.unlocked_at), col(Achievement.code))
    .limit(EXPORT_LIMIT + 1)
)
_MEMBERSHIPS = PreparedQuery(
    select(
        col(Member.id).label("id"),
        col(Member.community_id).label("community_id"),
        col(Community.name).label("community_name"),
        col(Member.role).label("role"),
        col(Member.joined_at).label("joined_at"),
        col(Member.updated_at).label("updated_at"),
    )
    .join(Community, col(Community.id) == Member.community_id)
    .where(col(Member.user_id) == _STUDENT, col(Community.producer_id) == _PRODUCER)
    .order_by(col(Member.joined_at), col(Member.id))
    .limit(EXPORT_LIMIT + 1)
)
_THREADS = PreparedQuery(
    select(
        col(Thread.id).label("id"),
        col(Thread.community_id).label("community_id"),
        col(Thread.title).label("title"),
        col(Thread.content).label("content"),
        col(Thread.pinned).label("pinned"),
        col(Thread.comment_count).label("comment_count"),
        col(Thread.created_at).label("created_at"),
        col(Thread.updated_at).label("updated_at"),
    )
    .join(Community, col(Community.id) == Thread.community_id)
    .where(col(Thread.author_id) == _STUDENT, col(Community.producer_id) == _PRODUCER)
    .order_by(col(Thread.created_at), col(Thread.id))
    .limit(EXPORT_LIMIT + 1)
)
_COMMENTS = PreparedQuery(
    select(
        col(Comment.id).label("id"),
        col(Thread.community_id).label("community_id"),
        col(Comment.thread_id).label("thread_id"),
        col(Comment.parent_id).label("parent_id"),
        col(Comment.content).label("content"),
        col(Comment.created_at).label("created_at"),
        col(Comment.updated_at).label("updated_at"),
    )
    .join(Thread, col(Thread.id) == Comment.thread_id)
    .join(Community, col(Community.id) == Thread.community_id)
    .where(col(Comment.author_id) == _STUDENT, col(Community.producer_id) == _PRODUCER)
    .order_by(col(Comment.created_at), col(Comment.id))
    .limit(EXPORT_LIMIT + 1)
)
_MEDIA = PreparedQuery(
    select(
        col(Media.id).label("id"),
        col(Media.community_id).label("community_id"),
        col(Media.type).label("type"),
        col(Media.title).label("title"),
        col(Media.description).label("description"),
        col(Media.url).label("url"),
        col(Media.file_name).label("file_name"),
        col(Media.file_size).label("file_size"),
        col(Media.mime_type).label("mime_type"),
        col(Media.thumbnail_url).label("thumbnail_url"),
        col(Media.duration).label("duration"),
        col(Media.uploaded_by).label("uploaded_by"),
        col(Media.created_at).label("created_at"),
    )
    .join(Community, col(Community.id) == Media.community_id)
    .where(col(Media.uploaded_by) == _STUDENT, col(Community.producer_id) == _PRODUCER)
    .order_by(col(Media.created_at), col(Media.id))
    .limit(EXPORT_LIMIT + 1)
)
_AUDIT = PreparedQuery(
    select(
        col(AuditEvent.id).label("id"),
        col(AuditEvent.occurred_at).label("occurred_at"),
        col(AuditEvent.key_id).label("key_id"),
        col(AuditEvent.key_name).label("key_name"),
        col(AuditEvent.operation).label("operation"),
        col(AuditEvent.target_ids).label("target_ids"),
        col(AuditEvent.outcome).label("outcome"),
    )
    .where(col(AuditEvent.producer_id) == _PRODUCER, _quoted_id_in(AuditEvent.target_ids))
    .order_by(col(AuditEvent.occurred_at).desc(), col(AuditEvent.id).desc())
    .limit(EXPORT_LIMIT + 1)
)
_EVENTS = PreparedQuery(
    select(
        col(Event.id).label("id"),
        col(Event.sequence).label("sequence"),
        col(Event.type).label("type"),
        col(Event.occurred_at).label("occurred_at"),
        col(Event.key_id).label("key_id"),
        col(Event.data).label("data"),
    )
    .where(
        col(Event.producer_id) == _PRODUCER,
        or_(col(Event.student_id) == _STUDENT, _quoted_id_in(Event.data)),
    )
    .order_by(col(Event.sequence).desc())
    .limit(EXPORT_LIMIT + 1)
)

_PARTS: dict[str, tuple[PreparedQuery, int]] = {
    "enrollments": (_ENROLLMENTS, EXPORT_LIMIT),
    "lessonProgress": (_PROGRESS, _PROGRESS_LIMIT),
    "achievements": (_ACHIEVEMENTS, EXPORT_LIMIT),
    "memberships": (_MEMBERSHIPS, EXPORT_LIMIT),
    "threads": (_THREADS, EXPORT_LIMIT),
    "comments": (_COMMENTS, EXPORT_LIMIT),
    "media": (_MEDIA, EXPORT_LIMIT),
    "auditEntries": (_AUDIT, EXPORT_LIMIT),
    "events": (_EVENTS, EXPORT_LIMIT),
}
"""Each part of an export (named as in the document) with its statement and its limit."""
_PARAMETERS = {
    name: {"producer_id", "student_id", "quoted_pattern"} & set(query.statement.compile().params)
    for name, (query, _) in _PARTS.items()
}
"""The parameters each part's statement takes (its limit is a constant of its own)."""


@dataclass(frozen=True)
class StudentRecords:
    profile: dict[str, Any]
    learning_days: list[date]
    parts: dict[str, list[dict[str, Any]]]
    """The rows of each part of `_PARTS`, by its name, at most its limit."""
    truncated: list[str]
    """The parts that had more rows than their limit, in `_PARTS` order."""


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def student_records(db: Db, *, producer_id: str, student_id: str) -> StudentRecords | None:
    """Everything about `producer_id`'s student `student_id` in `EXPORT_STATEMENTS` statements;
    None (after one statement) if the producer has no such student."""
    found = await student_with_learning_days(db, producer_id=producer_id, student_id=student_id)
    if found is None:
        return None
    profile, days = found
    params = {
        "producer_id": producer_id,
        "student_id": student_id,
        "quoted_pattern": f'%"{_like_escaped(student_id)}"%',
    }
    parts: dict[str, list[dict[str, Any]]] = {}
    truncated: list[str] = []
    for name, (query, limit) in _PARTS.items():
        rows = await db.rows(query, **{key: params[key] for key in _PARAMETERS[name]})
        if len(rows) > limit:
            truncated.append(name)
        parts[name] = rows[:limit]
    return StudentRecords(profile=profile, learning_days=days, parts=parts, truncated=truncated)
