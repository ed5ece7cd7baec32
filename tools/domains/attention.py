"""Students needing attention: `find_students_needing_attention`, the enrollments that stalled.

An enrollment's activity is its lesson progress: an `update_progress` that changes a lesson's
progress (storage.attention). It is silent since its last such change, or since it was enrolled
if it never had one; it stalled when that silence has lasted `inactiveDays` and its progress is
below `maxProgress`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import Field

from storage import attention as attention_storage
from storage.attention import StalledEnrollment
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.fields import Id
from tools.core.models import InputModel, OutputModel, Page, Pagination, UtcDatetime
from tools.core.permissions import Permission
from tools.domains.curriculum import owned_course
from tools.domains.enrollments import percent
from tools.domains.streaks import utc_day

__all__ = ["find_students_needing_attention"]


class AttentionInput(InputModel):
    inactive_days: int = Field(default=14, ge=1, le=3650)
    max_progress: int = Field(default=100, ge=1, le=100)
    course_id: Id | None = None
    never_started: bool = False
    page: int = Field(default=1, ge=1, le=1_000_000, description="Page number, from 1.")
    limit: int = Field(default=20, ge=1, le=100, description="Results per page, 1-100.")


class LessonRef(OutputModel):
    id: str
    title: str


class StalledEnrollmentPublic(OutputModel):
    enrollment_id: str
    student_id: str
    student_name: str
    course_id: str
    course_title: str
    enrolled_at: UtcDatetime
    progress_percent: int = Field(description="Completed lessons over the course's lessons, rounded.")
    completed_lessons: int
    total_lessons: int
    last_activity_at: UtcDatetime | None = Field(
        description="The enrollment's last lesson progress change; null: never started."
    )
    days_silent: int = Field(description="UTC days from the day of lastActivityAt (or enrolledAt) to today.")
    current_streak: int = Field(
        description="The student's run of learning days (any course) ending today or yesterday."
    )
    next_lesson: LessonRef | None = Field(
        description="First lesson not completed, in curriculum order; null: none."
    )


class AttentionPage(Page[StalledEnrollmentPublic]):
    silent_since: UtcDatetime = Field(
        description="Listed: no lesson progress since this midnight (UTC), inactiveDays - 1 days before today's."
    )


def _public(
    row: StalledEnrollment,
    *,
    today: date,
    streaks: dict[str, int],
    next_lessons: dict[str, tuple[str, str]],
) -> StalledEnrollmentPublic:
    lesson = next_lessons.get(row.enrollment_id)
    return StalledEnrollmentPublic(
        enrollment_id=row.enrollment_id,
        student_id=row.student_id,
        student_name=row.student_name,
        course_id=row.course_id,
        course_title=row.course_title,
        enrolled_at=row.enrolled_at,
        progress_percent=percent(row.completed_lessons, row.total_lessons),
        completed_lessons=row.completed_lessons,
        total_lessons=row.total_lessons,
        last_activity_at=row.silent_since if row.started else None,
        days_silent=(today - utc_day(row.silent_since)).days,
        current_streak=streaks.get(row.student_id, 0),
        next_lesson=LessonRef(id=lesson[0], title=lesson[1]) if lesson is not None else None,
    )


@operation(
    title="Find students needing attention",
    permission=Permission.ENROLLMENTS_READ,
    http=("GET", "/enrollments/attention"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def find_students_needing_attention(ctx: OperationContext, data: AttentionInput) -> AttentionPage:
    """Enrollments without progress for inactiveDays, under maxProgress %, longest silence first:
    progress, streak, next lesson."""
    if data.course_id is not None:
        await owned_course(ctx, data.course_id)
    today = utc_day(ctx.now())
    last_silent_day = today - timedelta(days=data.inactive_days)
    rows, total = await attention_storage.stalled_enrollments(
        ctx.db,
        producer_id=ctx.producer_id,
        last_silent_day=last_silent_day,
        max_percent=data.max_progress,
        course_id=data.course_id,
        never_started=data.never_started,
        offset=(data.page - 1) * data.limit,
        limit=data.limit,
    )
    streaks: dict[str, int] = {}
    next_lessons: dict[str, tuple[str, str]] = {}
    if rows:
        next_lessons = await attention_storage.next_lessons(
            ctx.db, enrollment_ids=[row.enrollment_id for row in rows]
        )
        streaks = await attention_storage.current_streaks(
            ctx.db, student_ids=[row.student_id for row in rows], today=today
        )
    total_pages = (total + data.limit - 1) // data.limit
    return AttentionPage(
        data=[_public(row, today=today, streaks=streaks, next_lessons=next_lessons) for row in rows],
        pagination=Pagination(
            page=data.page,
            limit=data.limit,
            total=total,
            total_pages=total_pages,
            has_more=data.page < total_pages,
        ),
        silent_since=datetime.combine(last_silent_day + timedelta(days=1), time.min, tzinfo=UTC),
    )
