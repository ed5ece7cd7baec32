"""A school's overview in the store: counts, daily learning activity and course completion.

Read by `get_school_overview` (the dashboard's Overview page). Every query is filtered by the
producer; the activity window is a few weeks, so the daily series are a few dozen rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlmodel import col

from storage.db import Db
from storage.tables import Certificate, Community, Course, Enrollment, LearningDay, LessonProgress, User

__all__ = [
    "CourseCompletion",
    "SchoolCounts",
    "active_learners_by_day",
    "course_completions",
    "lessons_completed_by_day",
    "school_counts",
]


@dataclass(frozen=True)
class SchoolCounts:
    students: int
    published_courses: int
    draft_courses: int
    active_enrollments: int
    completed_enrollments: int
    certificates: int
    communities: int


@dataclass(frozen=True)
class CourseCompletion:
    course_id: str
    title: str
    published: bool
    enrollments: int
    completed: int


async def _scalar(db: Db, statement) -> int:
    session = db.session
    return (await session.execute(statement)).scalar_one() or 0


async def school_counts(db: Db, *, producer_id: str) -> SchoolCounts:
    session = db.session
    students = await _scalar(
        db,
        select(func.count())
        .select_from(User)
        .where(col(User.producer_id) == producer_id, col(User.role) == "student"),
    )
    by_state = dict(
        (
            await session.execute(
                select(col(Course.published), func.count())
                .where(col(Course.producer_id) == producer_id)
                .group_by(col(Course.published))
            )
        ).all()
    )
    completed = col(Enrollment.completed_at).is_not(None)
    enrollments = dict(
        (
            await session.execute(
                select(completed, func.count())
                .where(col(Enrollment.producer_id) == producer_id)
                .group_by(completed)
            )
        ).all()
    )
    certificates = await _scalar(
        db,
        select(func.count())
        .select_from(Certificate)
        .join(Enrollment, col(Enrollment.id) == Certificate.enrollment_id)
        .where(col(Enrollment.producer_id) == producer_id),
    )
    communities = await _scalar(
        db, select(func.count()).select_from(Community).where(col(Community.producer_id) == producer_id)
    )
    return SchoolCounts(
        students=students,
        published_courses=by_state.get(True, 0),
        draft_courses=by_state.get(False, 0),
        active_enrollments=enrollments.get(False, 0),
        completed_enrollments=enrollments.get(True, 0),
        certificates=certificates,
        communities=communities,
    )


async def lessons_completed_by_day(db: Db, *, producer_id: str, since: datetime) -> Counter[date]:
    """Lessons completed per UTC day from `since` on. Bucketed here rather than in SQL: date
    functions and time zones differ between engines, and the window holds few rows."""
    session = db.session
    statement = (
        select(col(LessonProgress.completed_at))
        .join(Enrollment, col(Enrollment.id) == LessonProgress.enrollment_id)
        .where(col(Enrollment.producer_id) == producer_id, col(LessonProgress.completed_at) >= since)
    )
    return Counter(
        _utc_day(moment) for moment in (await session.scalars(statement)).all() if moment is not None
    )


async def active_learners_by_day(db: Db, *, producer_id: str, since: date) -> dict[date, int]:
    """Students who learned on each day from `since` on (the streaks' learning days)."""
    session = db.session
    statement = (
        select(col(LearningDay.day), func.count())
        .join(User, col(User.id) == LearningDay.student_id)
        .where(col(User.producer_id) == producer_id, col(LearningDay.day) >= since)
        .group_by(col(LearningDay.day))
    )
    return {day: count for day, count in (await session.execute(statement)).all()}


async def course_completions(db: Db, *, producer_id: str, limit: int) -> list[CourseCompletion]:
    """The producer's courses with the most enrollments, each with how many completed."""
    session = db.session
    enrolled = func.count(col(Enrollment.id))
    statement = (
        select(
            col(Course.id),
            col(Course.title),
            col(Course.published),
            enrolled,
            func.count(col(Enrollment.completed_at)),
        )
        .outerjoin(Enrollment, col(Enrollment.course_id) == Course.id)
        .where(col(Course.producer_id) == producer_id)
        .group_by(col(Course.id), col(Course.title), col(Course.published))
        .order_by(enrolled.desc(), col(Course.title), col(Course.id))
        .limit(limit)
    )
    return [CourseCompletion(*row) for row in (await session.execute(statement)).all()]


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date() if moment.tzinfo is not None else moment.date()
