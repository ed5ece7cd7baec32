"""`export_student`: one JSON document with everything the school holds about a student (GDPR
articles 15 and 20), for the student who asks for it. docs/privacy.md documents it field by field;
the models here carry no field descriptions, since their schema is part of every `tools/list`.

Each part holds at most `storage.student_export.EXPORT_LIMIT` items (lesson progress ten times
that): a part that had more is named in `truncated`, and the rest is found through the list
operations (list_enrollments, list_events with studentId, list_audit_events).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from storage import student_export as export_storage
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import NotFound
from tools.core.models import OutputModel, UtcDatetime
from tools.core.permissions import Permission
from tools.domains.achievements import RULES
from tools.domains.audit_log import AuditEventPublic
from tools.domains.communities import MediaPublic
from tools.domains.event_feed import EventPublic
from tools.domains.streaks import Streak, streaks, utc_day
from tools.domains.students import StudentPublic, StudentRef

__all__ = ["StudentExport", "export_student"]

_RULE_TITLES = {rule.code: rule.title for rule in RULES}


class ExportedLesson(OutputModel):
    lesson_id: str
    title: str
    completed: bool
    watched_seconds: int
    completed_at: UtcDatetime | None


class ExportedEnrollment(OutputModel):
    id: str
    course_id: str
    course_title: str
    course_slug: str
    enrolled_at: UtcDatetime
    completed_at: UtcDatetime | None
    updated_at: UtcDatetime
    completed_lessons: int
    lessons: list[ExportedLesson]


class ExportedCertificate(OutputModel):
    id: str
    enrollment_id: str
    course_id: str
    course_title: str
    verification_code: str
    issued_at: UtcDatetime


class ExportedAchievement(OutputModel):
    code: str
    title: str
    unlocked_at: UtcDatetime


class ExportedMembership(OutputModel):
    id: str
    community_id: str
    community_name: str
    role: str
    joined_at: UtcDatetime
    updated_at: UtcDatetime


class ExportedThread(OutputModel):
    id: str
    community_id: str
    title: str
    content: str
    pinned: bool
    comment_count: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ExportedComment(OutputModel):
    id: str
    community_id: str
    thread_id: str
    parent_id: str | None
    content: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


class StudentExport(OutputModel):
    exported_at: UtcDatetime
    student: StudentPublic
    streak: Streak
    learning_days: list[date]
    enrollments: list[ExportedEnrollment]
    certificates: list[ExportedCertificate]
    achievements: list[ExportedAchievement]
    memberships: list[ExportedMembership]
    threads: list[ExportedThread]
    comments: list[ExportedComment]
    media: list[MediaPublic]
    audit_entries: list[AuditEventPublic]
    events: list[EventPublic]
    truncated: list[str]


def _enrollments(records: export_storage.StudentRecords) -> list[ExportedEnrollment]:
    lessons: defaultdict[str, list[ExportedLesson]] = defaultdict(list)
    for row in records.parts["lessonProgress"]:
        lessons[row["enrollment_id"]].append(ExportedLesson(**row))
    return [ExportedEnrollment(**row, lessons=lessons[row["id"]]) for row in records.parts["enrollments"]]


def _certificates(records: export_storage.StudentRecords) -> list[ExportedCertificate]:
    return [
        ExportedCertificate(
            id=row["certificate_id"],
            enrollment_id=row["id"],
            course_id=row["course_id"],
            course_title=row["course_title"],
            verification_code=row["verification_code"],
            issued_at=row["issued_at"],
        )
        for row in records.parts["enrollments"]
        if row["certificate_id"] is not None
    ]


@operation(
    title="Export student",
    permission=Permission.STUDENTS_READ,
    http=("GET", "/students/{studentId}/export"),
    kind="read",
    audited_read=True,  # who exported whose data, and when: a school accounts for its exports
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the student page's download
)
async def export_student(ctx: OperationContext, data: StudentRef) -> StudentExport:
    """All held on a student, as one JSON document (GDPR export)."""
    records = await export_storage.student_records(
        ctx.db, producer_id=ctx.producer_id, student_id=data.student_id
    )
    if records is None:
        raise NotFound("Student not found")
    parts = records.parts
    return StudentExport(
        exported_at=ctx.now(),
        student=StudentPublic(**records.profile),
        streak=streaks(records.learning_days, today=utc_day(ctx.now())),
        learning_days=records.learning_days,
        enrollments=_enrollments(records),
        certificates=_certificates(records),
        achievements=[
            ExportedAchievement(
                code=row["code"], title=_RULE_TITLES[row["code"]], unlocked_at=row["unlocked_at"]
            )
            for row in parts["achievements"]
        ],
        memberships=[ExportedMembership(**row) for row in parts["memberships"]],
        threads=[ExportedThread(**row) for row in parts["threads"]],
        comments=[ExportedComment(**row) for row in parts["comments"]],
        media=[MediaPublic(**row) for row in parts["media"]],
        audit_entries=[AuditEventPublic(**row) for row in parts["auditEntries"]],
        events=[EventPublic(**row) for row in parts["events"]],
        truncated=records.truncated,
    )
