"""Enrollments, lesson progress, learning days, achievements and certificates in the store.

Functions return None for "not found". Progress writes run in a write transaction
(`Store.writing`): on SQLite it holds the database's write lock from its `BEGIN IMMEDIATE`; on PostgreSQL `progress_state` locks the enrollment and its student, so one
student's progress updates take turns. The primary keys and unique
constraints of the tables are the final guarantee either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, String, bindparam, cast, delete, func, select
from sqlmodel import col

from storage.db import Db
from storage.ids import new_id
from storage.queries import add_row, count_where, insert_new
from storage.statements import PreparedQuery
from storage.students import STUDENT_ROLE
from storage.tables import (
    Achievement,
    Certificate,
    Course,
    Enrollment,
    LearningDay,
    Lesson,
    LessonProgress,
    Section,
    User,
)

__all__ = [
    "CurriculumLesson",
    "EnrollmentNames",
    "EnrollmentSummary",
    "StudentMatch",
    "achievements_query",
    "add_enrollment",
    "certificates_query",
    "curriculum_progress",
    "delete_enrollment",
    "enrollment_summaries",
    "enrollments_of_students",
    "enrollments_query",
    "find_enrollment",
    "get_enrollment",
    "get_named_enrollment",
    "insert_enrollments",
    "issue_certificate",
    "learning_days",
    "lesson_totals",
    "log_learning_day",
    "progress_state",
    "save_enrollment_times",
    "save_progress",
    "students_to_enroll",
    "unlock_achievements",
]


@dataclass(frozen=True)
class EnrollmentNames:
    """What an enrollment's ids stand for, joined in by the statement that reads the enrollment."""

    student_name: str
    course_title: str
    course_slug: str


@dataclass(frozen=True)
class EnrollmentSummary:
    """An enrollment's student and course, their names and its lesson counts."""

    student_id: str
    course_id: str
    names: EnrollmentNames
    completed_lessons: int
    total_lessons: int


@dataclass(frozen=True)
class CurriculumLesson:
    """A lesson of a course, where it sits, and one enrollment's progress on it (None: not started)."""

    lesson_id: str
    title: str
    section_id: str
    section_title: str
    progress: LessonProgress | None


@dataclass(frozen=True)
class StudentMatch:
    """A student found for a bulk enrollment."""

    id: str
    name: str
    email_normalized: str


_NAMES = (col(User.name), col(Course.title), col(Course.slug))
_CURRICULUM_ORDER = (col(Section.order), col(Section.id), col(Lesson.order), col(Lesson.id))
"""Sections in order, then their lessons: the order get_enrollment numbers lessons in (`position`)."""


def _with_names(statement: Select) -> Select:
    """`statement` over enrollments, joined to the student and course that `_NAMES` read."""
    return statement.join(User, col(User.id) == Enrollment.student_id).join(
        Course, col(Course.id) == Enrollment.course_id
    )


async def get_enrollment(
    db: Db, *, producer_id: str, enrollment_id: str, lock: bool = False
) -> Enrollment | None:
    """An enrollment of `producer_id`; with `lock`, held (FOR UPDATE where the engine has it) until commit."""
    session = db.session
    statement = select(Enrollment).where(
        col(Enrollment.id) == enrollment_id, col(Enrollment.producer_id) == producer_id
    )
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def find_enrollment(db: Db, *, student_id: str, course_id: str) -> Enrollment | None:
    session = db.session
    statement = select(Enrollment).where(
        col(Enrollment.student_id) == student_id, col(Enrollment.course_id) == course_id
    )
    return (await session.scalars(statement)).first()


async def get_named_enrollment(
    db: Db, *, producer_id: str, enrollment_id: str
) -> tuple[Enrollment, EnrollmentNames] | None:
    """An enrollment of `producer_id` with its student's and course's names. One statement."""
    session = db.session
    statement = _with_names(select(Enrollment, *_NAMES)).where(
        col(Enrollment.id) == enrollment_id, col(Enrollment.producer_id) == producer_id
    )
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    enrollment, student_name, course_title, course_slug = row
    return enrollment, EnrollmentNames(student_name, course_title, course_slug)


async def enrollment_summaries(db: Db, *, enrollment_ids: Iterable[str]) -> dict[str, EnrollmentSummary]:
    """Each enrollment's names and lesson counts (completed; the course's current total). One
    statement however many enrollments: the counts are correlated subqueries, each an index lookup."""
    session = db.session
    completed = (
        select(func.count())
        .select_from(LessonProgress)
        .where(col(LessonProgress.enrollment_id) == Enrollment.id, col(LessonProgress.completed).is_(True))
        .correlate(Enrollment)
        .scalar_subquery()
    )
    total = (
        select(func.count())
        .select_from(Lesson)
        .where(col(Lesson.course_id) == Enrollment.course_id)
        .correlate(Enrollment)
        .scalar_subquery()
    )
    columns = (
        col(Enrollment.id),
        col(Enrollment.student_id),
        col(Enrollment.course_id),
        *_NAMES,
        completed,
        total,
    )
    statement = _with_names(select(*columns)).where(col(Enrollment.id).in_(set(enrollment_ids)))
    return {
        enrollment_id: EnrollmentSummary(
            student_id, course_id, EnrollmentNames(student_name, course_title, course_slug), done, lessons
        )
        for enrollment_id, student_id, course_id, student_name, course_title, course_slug, done, lessons in (
            await session.execute(statement)
        ).all()
    }


def enrollments_query(
    *,
    producer_id: str,
    student_id: str | None = None,
    course_id: str | None = None,
    completed: bool | None = None,
) -> Select:
    """A producer's enrollments, newest first, optionally of one student and/or one course, and
    completed (`completed_at` set) or not."""
    statement = select(Enrollment).where(col(Enrollment.producer_id) == producer_id)
    if student_id is not None:
        statement = statement.where(col(Enrollment.student_id) == student_id)
    if course_id is not None:
        statement = statement.where(col(Enrollment.course_id) == course_id)
    if completed is not None:
        statement = statement.where(
            col(Enrollment.completed_at).is_not(None) if completed else col(Enrollment.completed_at).is_(None)
        )
    return statement.order_by(col(Enrollment.enrolled_at).desc(), col(Enrollment.id).desc())


async def students_to_enroll(
    db: Db, *, producer_id: str, ids: Sequence[str] = (), emails_normalized: Sequence[str] = ()
) -> list[StudentMatch]:
    """The producer's students among `ids` or `emails_normalized` (absent: no such student of
    theirs). One statement on the primary key or the (producer, email) unique index."""
    session = db.session
    statement = select(col(User.id), col(User.name), col(User.email_normalized)).where(
        col(User.producer_id) == producer_id, col(User.role) == STUDENT_ROLE
    )
    if ids:
        statement = statement.where(col(User.id).in_(set(ids)))
    else:
        statement = statement.where(col(User.email_normalized).in_(set(emails_normalized)))
    return [StudentMatch(*row) for row in (await session.execute(statement)).all()]


async def enrollments_of_students(db: Db, *, course_id: str, student_ids: Iterable[str]) -> dict[str, str]:
    """The enrollment id of each of `student_ids` already enrolled in the course. One statement."""
    session = db.session
    statement = select(col(Enrollment.student_id), col(Enrollment.id)).where(
        col(Enrollment.course_id) == course_id, col(Enrollment.student_id).in_(set(student_ids))
    )
    return {
        student_id: enrollment_id for student_id, enrollment_id in (await session.execute(statement)).all()
    }


def _enrollment(*, producer_id: str, student_id: str, course_id: str, at: datetime) -> Enrollment:
    return Enrollment(
        id=new_id("enrollment"),
        producer_id=producer_id,
        student_id=student_id,
        course_id=course_id,
        enrolled_at=at,
        updated_at=at,
    )


async def add_enrollment(
    db: Db, *, producer_id: str, student_id: str, course_id: str, at: datetime
) -> Enrollment:
    """Enroll a student of `producer_id` in the course; the same pair enrolled meanwhile raises
    `ConstraintViolation` (the unique (student, course) constraint)."""
    enrollment = _enrollment(producer_id=producer_id, student_id=student_id, course_id=course_id, at=at)
    await add_row(db, row=enrollment)
    return enrollment


async def insert_enrollments(
    db: Db, *, producer_id: str, course_id: str, student_ids: Sequence[str], at: datetime
) -> dict[str, Enrollment]:
    """Enroll students of `producer_id` in the course in one statement, skipping any pair a
    concurrent call enrolled first (the unique (student, course) constraint); the enrollments
    inserted, by student id, in the order given."""
    rows = [
        _enrollment(producer_id=producer_id, student_id=student_id, course_id=course_id, at=at)
        for student_id in student_ids
    ]
    inserted = {
        enrollment_id
        for (enrollment_id,) in await insert_new(db, Enrollment, [row.model_dump() for row in rows])
    }
    return {row.student_id: row for row in rows if row.id in inserted}


async def delete_enrollment(db: Db, *, enrollment_id: str) -> None:
    """Delete an enrollment; the database cascades to its progress and certificate."""
    session = db.session
    await session.execute(delete(Enrollment).where(col(Enrollment.id) == enrollment_id))


@dataclass
class EnrollmentRow:
    """An enrollment's columns, as a progress update reads and changes them."""

    id: str
    student_id: str
    course_id: str
    enrolled_at: datetime
    completed_at: datetime | None
    updated_at: datetime


@dataclass
class ProgressRow:
    """An enrollment's progress on one lesson."""

    completed: bool
    watched_seconds: int
    completed_at: datetime | None


@dataclass
class ProgressState:
    """What a progress update needs to know before it writes, read in one statement: the
    enrollment and the lesson's progress (plain rows: the caller writes its changes with
    `save_progress` and `save_enrollment_times`), names, and the counts the course's completion
    and the achievement rules look at, as they stand."""

    enrollment: EnrollmentRow
    names: EnrollmentNames
    lesson_id: str | None
    """The lesson asked for, if the course has it (by id, or at that position)."""
    progress: ProgressRow | None
    """The enrollment's progress on that lesson; None before the first update."""
    completed_lessons: int
    """Of this enrollment."""
    total_lessons: int
    student_completed_lessons: int
    """Across all the student's enrollments."""
    student_completed_courses: int
    learning_days: list[date]
    """Oldest first."""
    achievements: set[str]
    """The codes the student has unlocked."""


# Plain tables, not the mapped classes: the statement returns rows, and no ORM machinery runs.
_ENROLLMENTS, _USERS, _COURSES = Enrollment.__table__, User.__table__, Course.__table__
_LESSONS, _SECTIONS, _PROGRESS = Lesson.__table__, Section.__table__, LessonProgress.__table__


def _count(table: Any, *conditions: Any) -> Any:
    # Correlated to the enrollment alone: lesson_progress is in the outer statement too.
    return count_where(table, *conditions).correlate(_ENROLLMENTS)


def _joined(column: Any) -> Any:
    """A student's values of `column`, comma-joined in one string (one statement for a list)."""
    return func.aggregate_strings(cast(column, String), ",")


def _progress_state_statement(*, by_position: bool) -> Select:
    """`progress_state`'s statement, built once: its lesson given by id, or by position."""
    enrollment, lessons, sections, progress = _ENROLLMENTS.c, _LESSONS.c, _SECTIONS.c, _PROGRESS.c
    if by_position:
        lesson = (
            select(lessons.id)
            .join(_SECTIONS, sections.id == lessons.section_id)
            .where(lessons.course_id == enrollment.course_id)
            .order_by(sections.order, sections.id, lessons.order, lessons.id)  # as _CURRICULUM_ORDER
            .offset(bindparam("offset"))
            .limit(1)
            .correlate(_ENROLLMENTS)
            .scalar_subquery()
        )
        progress_of_lesson = progress.lesson_id == lesson
    else:
        lesson = (
            select(lessons.id)
            .where(lessons.id == bindparam("lesson_id"), lessons.course_id == enrollment.course_id)
            .correlate(_ENROLLMENTS)
            .scalar_subquery()
        )
        progress_of_lesson = progress.lesson_id == bindparam("lesson_id")
    theirs, their_progress = _ENROLLMENTS.alias("theirs"), _PROGRESS.alias("their_progress")
    days, unlocked = LearningDay.__table__.c, Achievement.__table__.c
    return (
        select(
            enrollment.id,
            enrollment.student_id,
            enrollment.course_id,
            enrollment.enrolled_at,
            enrollment.completed_at,
            enrollment.updated_at,
            progress.completed,
            progress.watched_seconds,
            progress.completed_at.label("progress_completed_at"),
            progress.lesson_id.label("progress_lesson_id"),
            _USERS.c.name,
            _COURSES.c.title,
            _COURSES.c.slug,
            lesson.label("lesson_id"),
            _count(_PROGRESS, progress.enrollment_id == enrollment.id, progress.completed.is_(True)).label(
                "done"
            ),
            _count(_LESSONS, lessons.course_id == enrollment.course_id).label("total"),
            _count(
                their_progress.join(theirs, theirs.c.id == their_progress.c.enrollment_id),
                theirs.c.student_id == enrollment.student_id,
                their_progress.c.completed.is_(True),
            ).label("student_done"),
            _count(
                theirs, theirs.c.student_id == enrollment.student_id, theirs.c.completed_at.is_not(None)
            ).label("courses"),
            select(_joined(days.day))
            .where(days.student_id == enrollment.student_id)
            .scalar_subquery()
            .label("days"),
            select(_joined(unlocked.code))
            .where(unlocked.student_id == enrollment.student_id)
            .scalar_subquery()
            .label("codes"),
        )
        .select_from(_ENROLLMENTS)
        .join(_USERS, _USERS.c.id == enrollment.student_id)
        .join(_COURSES, _COURSES.c.id == enrollment.course_id)
        .outerjoin(_PROGRESS, (progress.enrollment_id == enrollment.id) & progress_of_lesson)
        .where(
            enrollment.id == bindparam("enrollment_id"), enrollment.producer_id == bindparam("producer_id")
        )
    )


_PROGRESS_STATE = {
    by_position: PreparedQuery(_progress_state_statement(by_position=by_position))
    for by_position in (False, True)
}
_LOCK_ENROLLMENT_AND_STUDENT = PreparedQuery(
    select(_ENROLLMENTS.c.id)
    .join(_USERS, _USERS.c.id == _ENROLLMENTS.c.student_id)
    .where(
        _ENROLLMENTS.c.id == bindparam("enrollment_id"),
        _ENROLLMENTS.c.producer_id == bindparam("producer_id"),
    )
    .with_for_update(of=(_ENROLLMENTS, _USERS))
)


async def progress_state(
    db: Db,
    *,
    producer_id: str,
    enrollment_id: str,
    lesson_id: str | None,
    lesson_position: int | None,
) -> ProgressState | None:
    """The state a progress update starts from, the enrollment of `producer_id` and its student
    held until commit; None if the producer has no such enrollment. Give `lesson_id` or
    `lesson_position` (from 1, in curriculum order).

    PostgreSQL locks the two rows first, in a statement of their own: the reading statement then
    starts after any update that held them committed, and sees what it wrote (a statement that
    locks and reads at once would count from the snapshot it started with). On SQLite the write
    transaction holds the database from its first statement, so the read is the only statement."""
    keys = {"enrollment_id": enrollment_id, "producer_id": producer_id}
    if db.dialect.name != "sqlite":
        await db.run(_LOCK_ENROLLMENT_AND_STUDENT, **keys)
    by_position = lesson_id is None
    which = {"offset": (lesson_position or 1) - 1} if by_position else {"lesson_id": lesson_id}
    row = await db.first(_PROGRESS_STATE[by_position], **keys, **which)
    if row is None:
        return None
    progress = None
    if row["progress_lesson_id"] is not None:
        progress = ProgressRow(row["completed"], row["watched_seconds"], row["progress_completed_at"])
    return ProgressState(
        enrollment=EnrollmentRow(
            row["id"],
            row["student_id"],
            row["course_id"],
            row["enrolled_at"],
            row["completed_at"],
            row["updated_at"],
        ),
        names=EnrollmentNames(row["name"], row["title"], row["slug"]),
        lesson_id=row["lesson_id"],
        progress=progress,
        completed_lessons=row["done"],
        total_lessons=row["total"],
        student_completed_lessons=row["student_done"],
        student_completed_courses=row["courses"],
        learning_days=sorted(date.fromisoformat(day) for day in row["days"].split(","))
        if row["days"]
        else [],
        achievements=set(row["codes"].split(",")) if row["codes"] else set(),
    )


_INSERT_PROGRESS = PreparedQuery(_PROGRESS.insert())
_UPDATE_PROGRESS = PreparedQuery(
    _PROGRESS.update()
    .where(
        _PROGRESS.c.enrollment_id == bindparam("key_enrollment_id"),
        _PROGRESS.c.lesson_id == bindparam("key_lesson_id"),
    )
    .values(
        completed=bindparam("completed"),
        watched_seconds=bindparam("watched_seconds"),
        completed_at=bindparam("completed_at"),
    )
)
_UPDATE_ENROLLMENT_TIMES = PreparedQuery(
    _ENROLLMENTS.update()
    .where(_ENROLLMENTS.c.id == bindparam("key_id"))
    .values(updated_at=bindparam("updated_at"), completed_at=bindparam("completed_at"))
)


async def save_progress(
    db: Db,
    *,
    enrollment_id: str,
    lesson_id: str,
    progress: ProgressRow,
    new: bool,
) -> None:
    """Write an enrollment's progress on a lesson: its first row (`new`), or the changed one."""
    values = {
        "completed": progress.completed,
        "watched_seconds": progress.watched_seconds,
        "completed_at": progress.completed_at,
    }
    if new:
        await db.run(_INSERT_PROGRESS, enrollment_id=enrollment_id, lesson_id=lesson_id, **values)
    else:
        await db.run(_UPDATE_PROGRESS, key_enrollment_id=enrollment_id, key_lesson_id=lesson_id, **values)


async def save_enrollment_times(db: Db, enrollment: EnrollmentRow) -> None:
    """Write an enrollment's `updated_at` and `completed_at` as `enrollment` has them."""
    await db.run(
        _UPDATE_ENROLLMENT_TIMES,
        key_id=enrollment.id,
        updated_at=enrollment.updated_at,
        completed_at=enrollment.completed_at,
    )


async def curriculum_progress(db: Db, *, enrollment_id: str, course_id: str) -> list[CurriculumLesson]:
    """Every lesson of the course in curriculum order (section, then lesson), with its section
    and the enrollment's progress on it. One statement."""
    session = db.session
    statement = (
        select(col(Lesson.id), col(Lesson.title), col(Section.id), col(Section.title), LessonProgress)
        .join(Section, col(Section.id) == Lesson.section_id)
        .outerjoin(
            LessonProgress,
            (col(LessonProgress.lesson_id) == Lesson.id)
            & (col(LessonProgress.enrollment_id) == enrollment_id),
        )
        .where(col(Lesson.course_id) == course_id)
        .order_by(*_CURRICULUM_ORDER)
    )
    return [CurriculumLesson(*row) for row in (await session.execute(statement)).all()]


async def lesson_totals(db: Db, *, course_ids: Iterable[str]) -> dict[str, int]:
    """How many lessons each course has (absent: none). One statement."""
    session = db.session
    statement = (
        select(col(Lesson.course_id), func.count())
        .where(col(Lesson.course_id).in_(set(course_ids)))
        .group_by(col(Lesson.course_id))
    )
    return {key: number for key, number in (await session.execute(statement)).all()}


async def learning_days(db: Db, *, student_id: str) -> Sequence[date]:
    """The UTC days on which the student recorded progress, oldest first."""
    session = db.session
    statement = (
        select(col(LearningDay.day))
        .where(col(LearningDay.student_id) == student_id)
        .order_by(col(LearningDay.day))
    )
    return (await session.scalars(statement)).all()


def achievements_query(*, student_id: str) -> Select:
    """A student's unlocked achievements, newest first."""
    statement = select(Achievement).where(col(Achievement.student_id) == student_id)
    return statement.order_by(col(Achievement.unlocked_at).desc(), col(Achievement.code))


def certificates_query(
    *, producer_id: str, student_id: str | None = None, course_id: str | None = None
) -> Select:
    """A producer's certificates, newest first, optionally of one student and/or one course."""
    statement = (
        select(Certificate)
        .join(Enrollment, col(Enrollment.id) == Certificate.enrollment_id)
        .where(col(Enrollment.producer_id) == producer_id)
    )
    if student_id is not None:
        statement = statement.where(col(Enrollment.student_id) == student_id)
    if course_id is not None:
        statement = statement.where(col(Enrollment.course_id) == course_id)
    return statement.order_by(col(Certificate.issued_at).desc(), col(Certificate.id).desc())


async def issue_certificate(
    db: Db, *, enrollment_id: str, verification_code: str, at: datetime
) -> Certificate | None:
    """Issue the enrollment's certificate, issued at `at`; None if it already has one."""
    certificate = Certificate(
        id=new_id("certificate"),
        enrollment_id=enrollment_id,
        verification_code=verification_code,
        issued_at=at,
    )
    if not await insert_new(db, Certificate, [certificate.model_dump()]):
        return None
    return certificate


async def log_learning_day(db: Db, *, student_id: str, day: date) -> None:
    """Log `day` as one the student learned on (once: a day already logged stays as it is)."""
    await insert_new(db, LearningDay, [{"student_id": student_id, "day": day}])


async def unlock_achievements(db: Db, *, student_id: str, codes: Sequence[str], at: datetime) -> set[str]:
    """Unlock the achievements `codes` for the student at `at`, each once; the codes unlocked now
    (not one the student already had). No statement for no codes."""
    rows = [{"student_id": student_id, "code": code, "unlocked_at": at} for code in codes]
    return {code for _, code in await insert_new(db, Achievement, rows)}
