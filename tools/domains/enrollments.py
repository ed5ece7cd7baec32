"""Enrollments and lesson progress: enroll, list, get, update progress, delete.

Progress per lesson is monotonic: once completed a lesson stays completed, and the highest
`watchedSeconds` reported is kept. So repeating an update changes nothing, and concurrent
updates cannot undo each other. `percent` is completed lessons over the course's current
lessons, rounded, and 100 only when every lesson is completed: lessons added later lower it,
but the enrollment's `completedAt` and its certificate stay.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from pydantic import Field
from sqlalchemy.exc import IntegrityError

from storage import enrollments as enrollments_store
from storage.ids import new_id
from storage.tables import Enrollment, LessonProgress
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import Conflict, NotFound
from tools.core.fields import MAX_INT
from tools.core.models import (
    Deleted,
    InputModel,
    OutputModel,
    Page,
    UtcDatetime,
)
from tools.core.paging import paged
from tools.core.permissions import Permission
from tools.domains.achievements import (
    EnrollmentFilter,
    ProgressEvents,
    check_filter,
    record_progress,
)
from tools.domains.curriculum import owned_course
from tools.domains.streaks import Streak, streak_of
from tools.domains.students import owned_student

__all__ = [
    "delete_enrollment",
    "enroll_student",
    "get_enrollment",
    "list_enrollments",
    "percent",
    "update_progress",
]

Id = Annotated[str, Field(max_length=100)]

_ALREADY_ENROLLED = "This student is already enrolled in this course; see list_enrollments"


def percent(completed: int, total: int) -> int:
    """`completed` of `total` as a rounded percentage (1/3 -> 33, 2/3 -> 67); 100 only when all are done."""
    if total == 0:
        return 0
    rounded = (200 * completed + total) // (2 * total)
    return rounded if completed >= total else min(rounded, 99)


# ---- wire models


class Progress(OutputModel):
    completed_lessons: int
    total_lessons: int
    percent: int = Field(description="0-100, rounded; 100 only when every lesson is completed.")


class EnrollmentPublic(OutputModel):
    id: str
    student_id: str
    course_id: str
    enrolled_at: UtcDatetime
    completed_at: UtcDatetime | None = Field(description="When it first reached 100%.")
    progress: Progress


class LessonProgressPublic(OutputModel):
    lesson_id: str
    completed: bool
    watched_seconds: int
    completed_at: UtcDatetime | None


class EnrollmentDetail(EnrollmentPublic):
    lessons: list[LessonProgressPublic] = Field(description="Every lesson of the course, in curriculum order.")
    streak: Streak


class EnrollmentResult(OutputModel):
    enrollment: EnrollmentPublic


class EnrollmentDetailResult(OutputModel):
    enrollment: EnrollmentDetail


class ProgressResult(OutputModel):
    enrollment: EnrollmentPublic
    events: ProgressEvents


class EnrollInput(InputModel):
    student_id: Id
    course_id: Id


class EnrollmentRef(InputModel):
    enrollment_id: Id


class UpdateProgressInput(EnrollmentRef):
    lesson_id: Id
    completed: bool = Field(description="false never un-completes a lesson.")
    watched_seconds: int = Field(
        default=0, ge=0, le=MAX_INT, description="The highest reported is kept."
    )


# ---- helpers


def _enrollment_public(row: Enrollment, *, completed: int, total: int) -> EnrollmentPublic:
    progress = Progress(completed_lessons=completed, total_lessons=total, percent=percent(completed, total))
    return EnrollmentPublic.model_validate({**row.model_dump(), "progress": progress})


def _lesson_progress(lesson_id: str, row: LessonProgress | None) -> LessonProgressPublic:
    if row is None:  # not started
        return LessonProgressPublic(lesson_id=lesson_id, completed=False, watched_seconds=0, completed_at=None)
    return LessonProgressPublic.model_validate(row, from_attributes=True)


async def _owned_enrollment(ctx: OperationContext, enrollment_id: str, *, lock: bool = False) -> Enrollment:
    enrollment = await enrollments_store.get_enrollment(
        ctx.session, producer_id=ctx.producer_id, enrollment_id=enrollment_id, lock=lock
    )
    if enrollment is None:
        raise NotFound("Enrollment not found")
    return enrollment


async def _with_progress(ctx: OperationContext, rows: list[Enrollment]) -> list[EnrollmentPublic]:
    """`rows` with their progress: two statements, however many rows."""
    if not rows:
        return []
    session = ctx.session
    completed = await enrollments_store.completed_counts(session, enrollment_ids=[row.id for row in rows])
    totals = await enrollments_store.lesson_totals(session, course_ids=[row.course_id for row in rows])
    return [
        _enrollment_public(row, completed=completed.get(row.id, 0), total=totals.get(row.course_id, 0)) for row in rows
    ]


async def _save_progress(ctx: OperationContext, enrollment: Enrollment, data: UpdateProgressInput) -> bool:
    """Save the lesson's progress; True when this update completed the lesson."""
    row = await enrollments_store.get_progress(ctx.session, enrollment_id=enrollment.id, lesson_id=data.lesson_id)
    if row is None:
        row = LessonProgress(enrollment_id=enrollment.id, lesson_id=data.lesson_id)
        ctx.session.add(row)
    row.watched_seconds = max(row.watched_seconds, data.watched_seconds)
    newly_completed = data.completed and not row.completed
    if newly_completed:
        row.completed, row.completed_at = True, ctx.now()
    await ctx.session.flush()
    return newly_completed


# ---- operations


@operation(
    title="Enroll student",
    permission=Permission.ENROLLMENTS_WRITE,
    http=("POST", "/enrollments", 201),
    kind="write",
    events=("enrollment.created",),
)
async def enroll_student(ctx: OperationContext, data: EnrollInput) -> EnrollmentResult:
    """Enroll a student in a course (draft or published); the same pair twice is a conflict."""
    student = await owned_student(ctx, data.student_id)
    course = await owned_course(ctx, data.course_id)
    if await enrollments_store.find_enrollment(ctx.session, student_id=student.id, course_id=course.id):
        raise Conflict(_ALREADY_ENROLLED)
    enrollment = Enrollment(
        id=new_id("enrollment"),
        producer_id=ctx.producer_id,
        student_id=student.id,
        course_id=course.id,
        enrolled_at=ctx.now(),
    )
    ctx.session.add(enrollment)
    try:
        await ctx.session.flush()
    except IntegrityError:
        # A concurrent enrollment of the same pair won the race.
        raise Conflict(_ALREADY_ENROLLED) from None
    return EnrollmentResult(enrollment=(await _with_progress(ctx, [enrollment]))[0])


@operation(
    title="List enrollments",
    permission=Permission.ENROLLMENTS_READ,
    http=("GET", "/enrollments"),
    kind="read",
)
async def list_enrollments(ctx: OperationContext, data: EnrollmentFilter) -> Page[EnrollmentPublic]:
    """List enrollments with their progress, newest first. Paginated."""
    await check_filter(ctx, data)
    statement = enrollments_store.enrollments_query(
        producer_id=ctx.producer_id, student_id=data.student_id, course_id=data.course_id
    )
    return await paged(ctx.session, statement, query=data, convert_page=partial(_with_progress, ctx))


@operation(
    title="Get enrollment",
    permission=Permission.ENROLLMENTS_READ,
    http=("GET", "/enrollments/{enrollmentId}"),
    kind="read",
)
async def get_enrollment(ctx: OperationContext, data: EnrollmentRef) -> EnrollmentDetailResult:
    """Get an enrollment with progress per lesson (curriculum order), totals and the student's learning
    streak."""
    enrollment = await _owned_enrollment(ctx, data.enrollment_id)
    curriculum = await enrollments_store.curriculum_progress(
        ctx.session, enrollment_id=enrollment.id, course_id=enrollment.course_id
    )
    lessons = [_lesson_progress(lesson_id, row) for lesson_id, row in curriculum]
    summary = _enrollment_public(enrollment, completed=sum(x.completed for x in lessons), total=len(lessons))
    streak = await streak_of(ctx, enrollment.student_id)
    return EnrollmentDetailResult(enrollment=EnrollmentDetail(**summary.model_dump(), lessons=lessons, streak=streak))


@operation(
    title="Update progress",
    permission=Permission.ENROLLMENTS_WRITE,
    http=("PATCH", "/enrollments/{enrollmentId}"),
    kind="write",
    idempotent=True,
)
async def update_progress(ctx: OperationContext, data: UpdateProgressInput) -> ProgressResult:
    """Record progress on a lesson of the enrollment's course. Also logs today's learning (streaks),
    unlocks achievements and, at 100% the first time, issues a certificate; `events` says what."""
    enrollment = await _owned_enrollment(ctx, data.enrollment_id, lock=True)
    await enrollments_store.lock_student(ctx.session, student_id=enrollment.student_id)
    if not await enrollments_store.course_has_lesson(
        ctx.session, course_id=enrollment.course_id, lesson_id=data.lesson_id
    ):
        # Like any id the caller cannot reach (another course's, another producer's): not found here.
        raise NotFound(f"Lesson not found in course {enrollment.course_id}; see get_course for its lessons")
    lesson_completed = await _save_progress(ctx, enrollment, data)
    [counted] = await _with_progress(ctx, [enrollment])
    completed, total = counted.progress.completed_lessons, counted.progress.total_lessons
    events = await record_progress(
        ctx,
        enrollment,
        learned=data.completed or data.watched_seconds > 0,
        course_complete=total > 0 and completed == total,
    )
    # record_progress may have just set completedAt.
    public = _enrollment_public(enrollment, completed=completed, total=total)
    _emit_progress_events(ctx, public, data.lesson_id, lesson_completed=lesson_completed, events=events)
    return ProgressResult(enrollment=public, events=events)


def _emit_progress_events(ctx: OperationContext, enrollment: EnrollmentPublic, lesson_id: str, *, lesson_completed: bool, events: ProgressEvents) -> None:
    """The feed's and webhooks' view of a progress update: what it completed, issued and unlocked."""
    who = {"enrollmentId": enrollment.id, "courseId": enrollment.course_id, "studentId": enrollment.student_id}
    if lesson_completed:
        ctx.emit("lesson.completed", {**who, "lessonId": lesson_id, "completedAt": ctx.now().isoformat().replace("+00:00", "Z")})
    if events.certificate_issued is not None:
        ctx.emit("course.completed", enrollment)
        ctx.emit("certificate.issued", {**events.certificate_issued.model_dump(mode="json", by_alias=True), **who})
    for achievement in events.new_achievements:
        ctx.emit("achievement.unlocked", {**achievement.model_dump(mode="json", by_alias=True), "studentId": enrollment.student_id})


@operation(
    title="Delete enrollment",
    permission=Permission.ENROLLMENTS_WRITE,
    http=("DELETE", "/enrollments/{enrollmentId}"),
    kind="delete",
    events=("enrollment.deleted",),
)
async def delete_enrollment(ctx: OperationContext, data: EnrollmentRef) -> Deleted:
    """Delete an enrollment with its lesson progress and certificate; the student's achievements and streak
    stay."""
    enrollment = await _owned_enrollment(ctx, data.enrollment_id, lock=True)
    await enrollments_store.delete_enrollment(ctx.session, enrollment_id=enrollment.id)
    return Deleted(id=enrollment.id)
