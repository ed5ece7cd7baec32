"""Enrollments, lesson progress, learning days, achievements and certificates in the store.

Functions return None for "not found". Progress writes run in a write transaction
(`Store.write_sessions`): on SQLite it holds the database's write lock from its first
statement; on PostgreSQL callers lock the enrollment and its student (`lock=True`,
`lock_student`), so one student's progress updates take turns. The primary keys and unique
constraints of the tables are the final guarantee either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.tables import (
    Achievement,
    Certificate,
    Enrollment,
    LearningDay,
    Lesson,
    LessonProgress,
    Section,
    User,
)

__all__ = [
    "achievements_query",
    "certificates_query",
    "completed_counts",
    "count_completed_courses",
    "count_completed_lessons",
    "course_has_lesson",
    "curriculum_progress",
    "delete_enrollment",
    "enrollments_by_id",
    "enrollments_query",
    "find_enrollment",
    "get_enrollment",
    "get_progress",
    "learning_days",
    "lesson_totals",
    "lock_student",
]


async def get_enrollment(
    session: AsyncSession, *, producer_id: str, enrollment_id: str, lock: bool = False
) -> Enrollment | None:
    """An enrollment of `producer_id`; with `lock`, held (FOR UPDATE where the engine has it) until commit."""
    statement = select(Enrollment).where(Enrollment.id == enrollment_id, Enrollment.producer_id == producer_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def find_enrollment(session: AsyncSession, *, student_id: str, course_id: str) -> Enrollment | None:
    statement = select(Enrollment).where(Enrollment.student_id == student_id, Enrollment.course_id == course_id)
    return (await session.scalars(statement)).first()


async def enrollments_by_id(session: AsyncSession, *, ids: Iterable[str]) -> dict[str, Enrollment]:
    rows = await session.scalars(select(Enrollment).where(Enrollment.id.in_(set(ids))))
    return {row.id: row for row in rows}


async def lock_student(session: AsyncSession, *, student_id: str) -> None:
    """Hold the student's row until commit (FOR UPDATE where the engine has it): their
    cross-course counts (completed courses, lessons) then cannot change under the caller."""
    await session.execute(select(User.id).where(User.id == student_id).with_for_update())


def enrollments_query(*, producer_id: str, student_id: str | None = None, course_id: str | None = None) -> Select:
    """A producer's enrollments, newest first, optionally of one student and/or one course."""
    statement = select(Enrollment).where(Enrollment.producer_id == producer_id)
    if student_id is not None:
        statement = statement.where(Enrollment.student_id == student_id)
    if course_id is not None:
        statement = statement.where(Enrollment.course_id == course_id)
    return statement.order_by(Enrollment.enrolled_at.desc(), Enrollment.id.desc())


async def delete_enrollment(session: AsyncSession, *, enrollment_id: str) -> None:
    """Delete an enrollment; the database cascades to its progress and certificate."""
    await session.execute(delete(Enrollment).where(Enrollment.id == enrollment_id))


async def course_has_lesson(session: AsyncSession, *, course_id: str, lesson_id: str) -> bool:
    statement = select(Lesson.id).where(Lesson.id == lesson_id, Lesson.course_id == course_id)
    return (await session.scalars(statement)).first() is not None


async def get_progress(session: AsyncSession, *, enrollment_id: str, lesson_id: str) -> LessonProgress | None:
    return await session.get(LessonProgress, (enrollment_id, lesson_id))


async def curriculum_progress(
    session: AsyncSession, *, enrollment_id: str, course_id: str
) -> list[tuple[str, LessonProgress | None]]:
    """Every lesson id of the course in curriculum order (section, then lesson), with the
    enrollment's progress on it (None: not started). One statement."""
    statement = (
        select(Lesson.id, LessonProgress)
        .join(Section, Section.id == Lesson.section_id)
        .outerjoin(
            LessonProgress,
            (LessonProgress.lesson_id == Lesson.id) & (LessonProgress.enrollment_id == enrollment_id),
        )
        .where(Lesson.course_id == course_id)
        .order_by(Section.order, Section.id, Lesson.order, Lesson.id)
    )
    return [(lesson_id, progress) for lesson_id, progress in (await session.execute(statement)).all()]


async def completed_counts(session: AsyncSession, *, enrollment_ids: Iterable[str]) -> dict[str, int]:
    """How many lessons each enrollment has completed (absent: none). One statement."""
    statement = (
        select(LessonProgress.enrollment_id, func.count())
        .where(LessonProgress.enrollment_id.in_(set(enrollment_ids)), LessonProgress.completed.is_(True))
        .group_by(LessonProgress.enrollment_id)
    )
    return {key: number for key, number in (await session.execute(statement)).all()}


async def lesson_totals(session: AsyncSession, *, course_ids: Iterable[str]) -> dict[str, int]:
    """How many lessons each course has (absent: none). One statement."""
    statement = (
        select(Lesson.course_id, func.count()).where(Lesson.course_id.in_(set(course_ids))).group_by(Lesson.course_id)
    )
    return {key: number for key, number in (await session.execute(statement)).all()}


async def count_completed_lessons(session: AsyncSession, *, student_id: str) -> int:
    """Lessons the student has completed, across all their enrollments."""
    statement = (
        select(func.count())
        .select_from(LessonProgress)
        .join(Enrollment, Enrollment.id == LessonProgress.enrollment_id)
        .where(Enrollment.student_id == student_id, LessonProgress.completed.is_(True))
    )
    return (await session.execute(statement)).scalar_one()


async def count_completed_courses(session: AsyncSession, *, student_id: str) -> int:
    """The student's enrollments that have reached 100% at some point."""
    statement = select(func.count()).where(Enrollment.student_id == student_id, Enrollment.completed_at.is_not(None))
    return (await session.execute(statement)).scalar_one()


async def learning_days(session: AsyncSession, *, student_id: str) -> Sequence[date]:
    """The UTC days on which the student recorded progress, oldest first."""
    statement = select(LearningDay.day).where(LearningDay.student_id == student_id).order_by(LearningDay.day)
    return (await session.scalars(statement)).all()


def achievements_query(*, student_id: str) -> Select:
    """A student's unlocked achievements, newest first."""
    statement = select(Achievement).where(Achievement.student_id == student_id)
    return statement.order_by(Achievement.unlocked_at.desc(), Achievement.code)


def certificates_query(*, producer_id: str, student_id: str | None = None, course_id: str | None = None) -> Select:
    """A producer's certificates, newest first, optionally of one student and/or one course."""
    statement = (
        select(Certificate)
        .join(Enrollment, Enrollment.id == Certificate.enrollment_id)
        .where(Enrollment.producer_id == producer_id)
    )
    if student_id is not None:
        statement = statement.where(Enrollment.student_id == student_id)
    if course_id is not None:
        statement = statement.where(Enrollment.course_id == course_id)
    return statement.order_by(Certificate.issued_at.desc(), Certificate.id.desc())
