"""Enrollments and lesson progress: enroll, list, get, update progress, delete.

Progress per lesson is monotonic: once completed a lesson stays completed, and the highest
`watchedSeconds` reported is kept. So repeating an update changes nothing, and concurrent
updates cannot undo each other. `percent` is completed lessons over the course's current
lessons, rounded, and 100 only when every lesson is completed: lessons added later lower it,
but the enrollment's `completedAt` and its certificate stay. Each change moves `updatedAt`.

`enroll_students` enrolls many students in one course with a few set-based statements: one finds
the students, one their existing enrollments, one insert per chunk of 100. It is not
all-or-nothing: a student who is missing or already enrolled is reported as such while the
others are enrolled.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Annotated, Literal

from pydantic import Field

from storage import enrollments as enrollments_storage
from storage.enrollments import (
    CurriculumLesson,
    EnrollmentNames,
    EnrollmentRow,
    ProgressRow,
    ProgressState,
    StudentMatch,
)
from storage.errors import ConstraintViolation
from storage.tables import Course, Enrollment
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import BadRequest, Conflict, NotFound
from tools.core.fields import MAX_INT, SEARCHES_IDENTITIES, exactly_one_of
from tools.core.models import (
    Deleted,
    InputModel,
    OutputModel,
    Page,
    UtcDatetime,
)
from tools.core.paging import paged
from tools.core.permissions import Permission
from tools.core.updates import unchanged
from tools.domains.accounts import normalize_email
from tools.domains.achievements import (
    EnrollmentFilter,
    ProgressEvents,
    check_filter,
    record_progress,
)
from tools.domains.curriculum import owned_course
from tools.domains.streaks import Streak, streak_of
from tools.domains.students import Email, owned_student

__all__ = [
    "MAX_BULK",
    "delete_enrollment",
    "enroll_student",
    "enroll_students",
    "get_enrollment",
    "list_enrollments",
    "percent",
    "update_progress",
]

Id = Annotated[str, Field(max_length=100)]

_ALREADY_ENROLLED = "This student is already enrolled in this course; see list_enrollments"

MAX_BULK = 1000
"""Students one `enroll_students` call takes."""
_CHUNK = 100
"""Enrollments inserted per statement by `enroll_students`, and how often it reports progress."""


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
    student_name: str
    course_id: str
    course_title: str
    course_slug: str
    enrolled_at: UtcDatetime
    completed_at: UtcDatetime | None = Field(description="When it first reached 100%.")
    updated_at: UtcDatetime
    progress: Progress


class LessonProgressPublic(OutputModel):
    lesson_id: str
    title: str
    section_id: str
    section_title: str
    position: int = Field(description="1-based, in curriculum order.")
    completed: bool
    watched_seconds: int
    completed_at: UtcDatetime | None


class EnrollmentDetail(EnrollmentPublic):
    lessons: list[LessonProgressPublic] = Field(
        description="Every lesson of the course, in curriculum order."
    )
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


class ListEnrollmentsInput(EnrollmentFilter):
    completed: bool | None = Field(default=None, description="true: completed only; false: the rest.")


class EnrollStudentsInput(InputModel):
    model_config = exactly_one_of("studentIds", "emails")

    course_id: Id
    student_ids: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, min_length=1, max_length=MAX_BULK
    )
    emails: Annotated[list[Email] | None, SEARCHES_IDENTITIES] = Field(
        default=None, min_length=1, max_length=MAX_BULK
    )


class StudentOutcome(OutputModel):
    student_id: str | None = Field(description="null: the email names no student.")
    email: str | None = Field(
        default=None, exclude_if=lambda email: email is None, description="When enrolling by emails."
    )
    outcome: Literal["enrolled", "already_enrolled", "not_found"]
    enrollment_id: str | None


class EnrollStudentsResult(OutputModel):
    results: list[StudentOutcome] = Field(description="One per distinct student given, in the order given.")
    enrolled: int
    already_enrolled: int
    not_found: int


class EnrollmentRef(InputModel):
    enrollment_id: Id


class UpdateProgressInput(EnrollmentRef):
    model_config = exactly_one_of("lessonId", "lessonPosition")

    lesson_id: Id = unchanged()
    lesson_position: int = unchanged(ge=1, le=MAX_INT, description="Or, not lessonId: 1-based.")
    completed: bool = Field(description="false never un-completes a lesson.")
    watched_seconds: int = Field(default=0, ge=0, le=MAX_INT, description="Highest reported is kept.")


# ---- helpers


def _enrollment_public(
    row: Enrollment | EnrollmentRow, names: EnrollmentNames, *, completed: int, total: int
) -> EnrollmentPublic:
    progress = Progress(completed_lessons=completed, total_lessons=total, percent=percent(completed, total))
    return EnrollmentPublic(
        id=row.id,
        student_id=row.student_id,
        student_name=names.student_name,
        course_id=row.course_id,
        course_title=names.course_title,
        course_slug=names.course_slug,
        enrolled_at=row.enrolled_at,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
        progress=progress,
    )


def _lesson_progress(lesson: CurriculumLesson, position: int) -> LessonProgressPublic:
    row = lesson.progress  # None: not started
    return LessonProgressPublic(
        lesson_id=lesson.lesson_id,
        title=lesson.title,
        section_id=lesson.section_id,
        section_title=lesson.section_title,
        position=position,
        completed=row is not None and row.completed,
        watched_seconds=row.watched_seconds if row is not None else 0,
        completed_at=row.completed_at if row is not None else None,
    )


async def _owned_enrollment(ctx: OperationContext, enrollment_id: str, *, lock: bool = False) -> Enrollment:
    enrollment = await enrollments_storage.get_enrollment(
        ctx.db, producer_id=ctx.producer_id, enrollment_id=enrollment_id, lock=lock
    )
    if enrollment is None:
        raise NotFound("Enrollment not found")
    return enrollment


async def _with_progress(ctx: OperationContext, rows: list[Enrollment]) -> list[EnrollmentPublic]:
    """`rows` with their names and progress: one statement, however many rows."""
    if not rows:
        return []
    summaries = await enrollments_storage.enrollment_summaries(
        ctx.db, enrollment_ids=[row.id for row in rows]
    )
    return [
        _enrollment_public(
            row, summary.names, completed=summary.completed_lessons, total=summary.total_lessons
        )
        for row in rows
        for summary in [summaries[row.id]]
    ]


async def _save_progress(
    ctx: OperationContext, state: ProgressState, lesson_id: str, data: UpdateProgressInput
) -> bool:
    """Save the progress on `lesson_id` (`state`'s lesson) as `data` says; True when this update
    completed the lesson. A change moves the enrollment's `updated_at` (written by the caller); a
    repeated update changes nothing, that included."""
    before = state.progress
    progress = (
        replace(before)
        if before is not None
        else ProgressRow(completed=False, watched_seconds=0, completed_at=None)
    )
    progress.watched_seconds = max(progress.watched_seconds, data.watched_seconds)
    newly_completed = data.completed and not progress.completed
    if newly_completed:
        progress.completed, progress.completed_at = True, ctx.now()
    if progress != before:
        await enrollments_storage.save_progress(
            ctx.db,
            enrollment_id=state.enrollment.id,
            lesson_id=lesson_id,
            progress=progress,
            new=before is None,
        )
        state.enrollment.updated_at = ctx.now()
    return newly_completed


def _distinct(data: EnrollStudentsInput) -> tuple[list[str], dict[str, str]]:
    """The students `data` names, each once in the order first given: their ids, or their emails
    normalized, with each email as it was first written (for the results)."""
    if data.emails is not None:
        spelled: dict[str, str] = {}
        for email in data.emails:
            spelled.setdefault(normalize_email(email), email)
        return list(spelled), spelled
    assert data.student_ids is not None, "enroll_students refuses a call that gives neither"
    return list(dict.fromkeys(data.student_ids)), {}


async def _enroll_chunk(
    ctx: OperationContext,
    course: Course,
    students: list[StudentMatch],
    enrolled: dict[str, str],
    *,
    total_lessons: int,
) -> set[str]:
    """Enroll `students` in `course` with one insert, each announced by an `enrollment.created`
    event; returns who was enrolled now, and adds each one's enrollment id to `enrolled`.

    The insert skips a pair the unique (student, course) constraint already holds: on PostgreSQL a
    concurrent enroll_student can commit one after this call looked. That student is then
    already_enrolled, with the other call's enrollment, and the others go ahead."""
    if not students:
        return set()
    created = await enrollments_storage.insert_enrollments(
        ctx.db,
        producer_id=ctx.producer_id,
        course_id=course.id,
        student_ids=[student.id for student in students],
        at=ctx.now(),
    )
    if len(created) < len(students):
        lost = [student.id for student in students if student.id not in created]
        enrolled.update(
            await enrollments_storage.enrollments_of_students(ctx.db, course_id=course.id, student_ids=lost)
        )
    for student in students:
        if (row := created.get(student.id)) is not None:
            enrolled[student.id] = row.id
            names = EnrollmentNames(student.name, course.title, course.slug)
            ctx.emit("enrollment.created", _enrollment_public(row, names, completed=0, total=total_lessons))
    return set(created)


# ---- operations


@operation(
    title="Enroll student",
    permission=Permission.ENROLLMENTS_WRITE,
    http=("POST", "/enrollments", 201),
    kind="write",
    events=("enrollment.created",),
)
async def enroll_student(ctx: OperationContext, data: EnrollInput) -> EnrollmentResult:
    """Enroll a student in a course (draft or published); twice: conflict."""
    student = await owned_student(ctx, data.student_id)
    course = await owned_course(ctx, data.course_id)
    if await enrollments_storage.find_enrollment(ctx.db, student_id=student.id, course_id=course.id):
        raise Conflict(_ALREADY_ENROLLED)
    try:
        enrollment = await enrollments_storage.add_enrollment(
            ctx.db, producer_id=ctx.producer_id, student_id=student.id, course_id=course.id, at=ctx.now()
        )
    except ConstraintViolation:
        # A concurrent enrollment of the same pair won the race.
        raise Conflict(_ALREADY_ENROLLED) from None
    return EnrollmentResult(enrollment=(await _with_progress(ctx, [enrollment]))[0])


@operation(
    title="Enroll students",
    permission=Permission.ENROLLMENTS_WRITE,
    http=("POST", "/enrollments/bulk"),
    kind="write",
    idempotent=True,  # a repeat enrolls nobody more: the students it names are already_enrolled
)
async def enroll_students(ctx: OperationContext, data: EnrollStudentsInput) -> EnrollStudentsResult:
    """Enroll up to 1000 studentIds or emails in a course; each: enrolled, already_enrolled or
    not_found."""
    if (data.student_ids is None) == (data.emails is None):
        both = "not both" if data.student_ids is not None else "one is required"
        raise BadRequest(f"Invalid input: studentIds: give studentIds or emails, {both}")
    course = await owned_course(ctx, data.course_id)
    by_email = data.emails is not None
    keys, spelled = _distinct(data)
    matches = await enrollments_storage.students_to_enroll(
        ctx.db,
        producer_id=ctx.producer_id,
        ids=[] if by_email else keys,
        emails_normalized=keys if by_email else [],
    )
    found = {(match.email_normalized if by_email else match.id): match for match in matches}
    enrolled = await enrollments_storage.enrollments_of_students(
        ctx.db, course_id=course.id, student_ids=[match.id for match in matches]
    )
    total_lessons = (await enrollments_storage.lesson_totals(ctx.db, course_ids=[course.id])).get(
        course.id, 0
    )
    results: list[StudentOutcome] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = [(key, found.get(key)) for key in keys[start : start + _CHUNK]]
        to_enroll = [match for _, match in chunk if match is not None and match.id not in enrolled]
        created = await _enroll_chunk(ctx, course, to_enroll, enrolled, total_lessons=total_lessons)
        for key, match in chunk:
            results.append(
                StudentOutcome(
                    student_id=match.id if match else (None if by_email else key),
                    email=spelled.get(key),
                    outcome="not_found"
                    if match is None
                    else "enrolled"
                    if match.id in created
                    else "already_enrolled",
                    enrollment_id=enrolled.get(match.id) if match else None,
                )
            )
        await ctx.report_progress(len(results), len(keys), f"{len(results)} of {len(keys)} students")
    return EnrollStudentsResult(
        results=results,
        enrolled=sum(result.outcome == "enrolled" for result in results),
        already_enrolled=sum(result.outcome == "already_enrolled" for result in results),
        not_found=sum(result.outcome == "not_found" for result in results),
    )


@operation(
    title="List enrollments",
    permission=Permission.ENROLLMENTS_READ,
    http=("GET", "/enrollments"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def list_enrollments(ctx: OperationContext, data: ListEnrollmentsInput) -> Page[EnrollmentPublic]:
    """Enrollments with their progress, newest first."""
    await check_filter(ctx, data)
    statement = enrollments_storage.enrollments_query(
        producer_id=ctx.producer_id,
        student_id=data.student_id,
        course_id=data.course_id,
        completed=data.completed,
    )
    return await paged(ctx.db, statement, query=data, convert_page=partial(_with_progress, ctx))


@operation(
    title="Get enrollment",
    permission=Permission.ENROLLMENTS_READ,
    http=("GET", "/enrollments/{enrollmentId}"),
    kind="read",
)
async def get_enrollment(ctx: OperationContext, data: EnrollmentRef) -> EnrollmentDetailResult:
    """An enrollment with per-lesson progress, totals and the student's streak."""
    found = await enrollments_storage.get_named_enrollment(
        ctx.db, producer_id=ctx.producer_id, enrollment_id=data.enrollment_id
    )
    if found is None:
        raise NotFound("Enrollment not found")
    enrollment, names = found
    curriculum = await enrollments_storage.curriculum_progress(
        ctx.db, enrollment_id=enrollment.id, course_id=enrollment.course_id
    )
    lessons = [_lesson_progress(lesson, position) for position, lesson in enumerate(curriculum, start=1)]
    summary = _enrollment_public(
        enrollment, names, completed=sum(x.completed for x in lessons), total=len(lessons)
    )
    streak = await streak_of(ctx, enrollment.student_id)
    return EnrollmentDetailResult(
        enrollment=EnrollmentDetail(**summary.model_dump(), lessons=lessons, streak=streak)
    )


@operation(
    title="Update progress",
    permission=Permission.ENROLLMENTS_WRITE,
    http=("PATCH", "/enrollments/{enrollmentId}"),
    kind="write",
    idempotent=True,
)
async def update_progress(ctx: OperationContext, data: UpdateProgressInput) -> ProgressResult:
    """Record lesson progress: counts toward streaks, unlocks achievements, certifies at 100%."""
    # "Mark lesson 3 done" needs no lookup of lesson 3's id: its position names it.
    if (data.lesson_id is None) == (data.lesson_position is None):
        raise BadRequest("Invalid input: lessonId: give lessonId or lessonPosition, exactly one")
    state = await enrollments_storage.progress_state(
        ctx.db,
        producer_id=ctx.producer_id,
        enrollment_id=data.enrollment_id,
        lesson_id=data.lesson_id,
        lesson_position=data.lesson_position,
    )
    if state is None:
        raise NotFound("Enrollment not found")
    enrollment = state.enrollment
    if state.lesson_id is None and data.lesson_position is not None:
        raise NotFound(
            f"Lesson not found: the course has fewer than {data.lesson_position} lessons; see get_enrollment"
        )
    if state.lesson_id is None:
        # Like any id the caller cannot reach (another course's, another producer's): not found here.
        raise NotFound(f"Lesson not found in course {enrollment.course_id}; see get_course for its lessons")
    times = (enrollment.updated_at, enrollment.completed_at)
    lesson_completed = await _save_progress(ctx, state, state.lesson_id, data)
    completed, total = state.completed_lessons + lesson_completed, state.total_lessons
    events = await record_progress(
        ctx,
        state,
        learned=data.completed or data.watched_seconds > 0,
        lesson_completed=lesson_completed,
        course_complete=total > 0 and completed == total,
    )
    if (
        enrollment.updated_at,
        enrollment.completed_at,
    ) != times:  # changed above, or completed by record_progress
        await enrollments_storage.save_enrollment_times(ctx.db, enrollment)
    public = _enrollment_public(enrollment, state.names, completed=completed, total=total)
    _emit_progress_events(ctx, public, state.lesson_id, lesson_completed=lesson_completed, events=events)
    return ProgressResult(enrollment=public, events=events)


def _emit_progress_events(
    ctx: OperationContext,
    enrollment: EnrollmentPublic,
    lesson_id: str,
    *,
    lesson_completed: bool,
    events: ProgressEvents,
) -> None:
    """The feed's and webhooks' view of a progress update: what it completed, issued and unlocked."""
    who = {
        "enrollmentId": enrollment.id,
        "courseId": enrollment.course_id,
        "studentId": enrollment.student_id,
    }
    if lesson_completed:
        ctx.emit(
            "lesson.completed",
            {**who, "lessonId": lesson_id, "completedAt": ctx.now().isoformat().replace("+00:00", "Z")},
        )
    if events.certificate_issued is not None:
        ctx.emit("course.completed", enrollment)
        ctx.emit(
            "certificate.issued", {**events.certificate_issued.model_dump(mode="json", by_alias=True), **who}
        )
    for achievement in events.new_achievements:
        ctx.emit(
            "achievement.unlocked",
            {**achievement.model_dump(mode="json", by_alias=True), "studentId": enrollment.student_id},
        )


@operation(
    title="Delete enrollment",
    permission=Permission.ENROLLMENTS_WRITE,
    http=("DELETE", "/enrollments/{enrollmentId}"),
    kind="delete",
    events=("enrollment.deleted",),
)
async def delete_enrollment(ctx: OperationContext, data: EnrollmentRef) -> Deleted:
    """Delete an enrollment, its progress and certificate; achievements, streak stay."""
    enrollment = await _owned_enrollment(ctx, data.enrollment_id, lock=True)
    await enrollments_storage.delete_enrollment(ctx.db, enrollment_id=enrollment.id)
    return Deleted(id=enrollment.id)
