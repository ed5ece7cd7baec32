"""Insights in the store: one course's figures and lesson funnel, and a school's period report.

Read by `tools.domains.insights`. Every figure is counted by the database, in a fixed number of
statements however large the school: a course's summary (one statement) and its funnel (one);
each part of the school report (students, learning, community) one statement of scalar
subqueries, each counting one window of one index-backed column. Every statement is filtered by
the producer. Windows are half-open, `[since, until)`, so an instant on an edge counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ScalarSelect, and_, case, exists, extract, func, select
from sqlmodel import col

from storage.db import Db
from storage.tables import (
    Certificate,
    Comment,
    Community,
    Course,
    Enrollment,
    LearningDay,
    Lesson,
    LessonProgress,
    Section,
    Thread,
    User,
)

__all__ = [
    "CourseSummary",
    "FunnelLesson",
    "Window",
    "community_counts",
    "course_funnel",
    "course_summary",
    "learning_counts",
    "student_counts",
]


@dataclass(frozen=True)
class CourseSummary:
    title: str
    enrollments: int
    completed: int
    certificates: int
    average_days_to_complete: float | None
    active_7_days: int
    active_30_days: int


@dataclass(frozen=True)
class FunnelLesson:
    lesson_id: str
    title: str
    section_id: str
    section_title: str
    started: int
    completed: int
    average_watched_seconds: float | None


@dataclass(frozen=True)
class Window:
    """`[since, until)`, and the learning days it holds: `[first_day, end_day)`, the UTC days that
    begin within it."""

    since: datetime
    until: datetime
    first_day: date
    end_day: date


def _days_between(db: Db, later: Any, earlier: Any) -> Any:
    if db.dialect.name == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return extract("epoch", later - earlier) / 86400.0


def _has_progress() -> Any:
    return exists().where(col(LessonProgress.enrollment_id) == Enrollment.id)


async def course_summary(
    db: Db, *, producer_id: str, course_id: str, now: datetime, week_start: datetime, month_start: datetime
) -> CourseSummary | None:
    """The course's title and figures, or None when the producer has no such course. One statement.
    Active in a window: the enrollment has lesson progress and its last progress change
    (`Enrollment.updated_at`) lies in `[start, now]`."""
    session = db.session
    completed = col(Enrollment.completed_at).is_not(None)
    updated = col(Enrollment.updated_at)

    def active_since(start: datetime) -> Any:
        return func.coalesce(
            func.sum(case((and_(updated >= start, updated <= now, _has_progress()), 1), else_=0)), 0
        )

    statement = (
        select(
            col(Course.title),
            func.count(col(Enrollment.id)),
            func.count(col(Enrollment.completed_at)),
            func.count(col(Certificate.id)),
            func.avg(case((completed, _days_between(db, Enrollment.completed_at, Enrollment.enrolled_at)))),
            active_since(week_start),
            active_since(month_start),
        )
        .select_from(Course)
        .outerjoin(Enrollment, col(Enrollment.course_id) == Course.id)
        .outerjoin(Certificate, col(Certificate.enrollment_id) == Enrollment.id)
        .where(col(Course.id) == course_id, col(Course.producer_id) == producer_id)
        .group_by(col(Course.id), col(Course.title))
    )
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    title, enrollments, done, certificates, average, week, month = row
    return CourseSummary(
        title=title,
        enrollments=enrollments,
        completed=done,
        certificates=certificates,
        average_days_to_complete=None if average is None else float(average),
        active_7_days=int(week),
        active_30_days=int(month),
    )


async def course_funnel(db: Db, *, producer_id: str, course_id: str) -> list[FunnelLesson]:
    """Every lesson of the course in curriculum order (section order, then lesson order), with how
    many enrollments recorded progress on it, how many completed it, and their average watched
    seconds. One statement."""
    session = db.session
    statement = (
        select(
            col(Lesson.id),
            col(Lesson.title),
            col(Section.id),
            col(Section.title),
            func.count(col(LessonProgress.enrollment_id)),
            func.coalesce(func.sum(case((col(LessonProgress.completed), 1), else_=0)), 0),
            func.avg(col(LessonProgress.watched_seconds)),
        )
        .join(Section, col(Section.id) == Lesson.section_id)
        .join(Course, col(Course.id) == Lesson.course_id)
        .outerjoin(LessonProgress, col(LessonProgress.lesson_id) == Lesson.id)
        .where(col(Lesson.course_id) == course_id, col(Course.producer_id) == producer_id)
        .group_by(
            col(Lesson.id),
            col(Lesson.title),
            col(Lesson.order),
            col(Section.id),
            col(Section.title),
            col(Section.order),
        )
        .order_by(col(Section.order), col(Section.id), col(Lesson.order), col(Lesson.id))
    )
    return [
        FunnelLesson(
            lesson_id=lesson_id,
            title=title,
            section_id=section_id,
            section_title=section_title,
            started=started,
            completed=int(done),
            average_watched_seconds=None if average is None else float(average),
        )
        for lesson_id, title, section_id, section_title, started, done, average in (
            await session.execute(statement)
        ).all()
    ]


def _in(column: Any, window: Window) -> Any:
    return and_(column >= window.since, column < window.until)


async def _pairs(db: Db, counts: dict[str, tuple[ScalarSelect, ScalarSelect]]) -> dict[str, tuple[int, int]]:
    """Each named (current, previous) pair of scalar subqueries, in one statement."""
    session = db.session
    columns = [
        subquery.label(f"{name}_{i}") for name, pair in counts.items() for i, subquery in enumerate(pair)
    ]
    row = (await session.execute(select(*columns))).one()
    values = [int(value or 0) for value in row]
    return {name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(counts)}


def _both(make: Any, current: Window, previous: Window) -> tuple[ScalarSelect, ScalarSelect]:
    return make(current), make(previous)


async def student_counts(
    db: Db, *, producer_id: str, current: Window, previous: Window
) -> dict[str, tuple[int, int]]:
    """New students (created) in each window. One statement."""

    def new_students(window: Window) -> ScalarSelect:
        return (
            select(func.count())
            .select_from(User)
            .where(
                col(User.producer_id) == producer_id,
                col(User.role) == "student",
                _in(col(User.created_at), window),
            )
            .scalar_subquery()
        )

    return await _pairs(db, {"new_students": _both(new_students, current, previous)})


async def learning_counts(
    db: Db, *, producer_id: str, current: Window, previous: Window
) -> dict[str, tuple[int, int]]:
    """Enrollments made, lessons completed, courses completed, certificates issued and active
    learners (distinct students with a learning day that begins in the window) in each window.
    One statement."""

    def enrollments(window: Window) -> ScalarSelect:
        return (
            select(func.count())
            .select_from(Enrollment)
            .where(col(Enrollment.producer_id) == producer_id, _in(col(Enrollment.enrolled_at), window))
            .scalar_subquery()
        )

    def courses_completed(window: Window) -> ScalarSelect:
        return (
            select(func.count())
            .select_from(Enrollment)
            .where(col(Enrollment.producer_id) == producer_id, _in(col(Enrollment.completed_at), window))
            .scalar_subquery()
        )

    def of_producer(enrollment_id: Any) -> Any:
        """The enrollment is the producer's: a lookup by primary key, so the window's index drives."""
        return exists().where(col(Enrollment.id) == enrollment_id, col(Enrollment.producer_id) == producer_id)

    def lessons_completed(window: Window) -> ScalarSelect:
        return (
            select(func.count())
            .select_from(LessonProgress)
            .where(
                _in(col(LessonProgress.completed_at), window),
                of_producer(LessonProgress.enrollment_id),
            )
            .scalar_subquery()
        )

    def certificates(window: Window) -> ScalarSelect:
        return (
            select(func.count())
            .select_from(Certificate)
            .where(_in(col(Certificate.issued_at), window), of_producer(Certificate.enrollment_id))
            .scalar_subquery()
        )

    def active_learners(window: Window) -> ScalarSelect:
        return (
            select(func.count(func.distinct(col(LearningDay.student_id))))
            .where(
                col(LearningDay.day) >= window.first_day,
                col(LearningDay.day) < window.end_day,
                exists().where(col(User.id) == LearningDay.student_id, col(User.producer_id) == producer_id),
            )
            .scalar_subquery()
        )

    makers = {
        "enrollments": enrollments,
        "lessons_completed": lessons_completed,
        "courses_completed": courses_completed,
        "certificates": certificates,
        "active_learners": active_learners,
    }
    return await _pairs(db, {name: _both(make, current, previous) for name, make in makers.items()})


async def community_counts(
    db: Db, *, producer_id: str, current: Window, previous: Window
) -> dict[str, tuple[int, int]]:
    """Threads and comments created in each window, in the producer's communities. One statement."""

    def threads(window: Window) -> ScalarSelect:
        return (
            select(func.count())
            .select_from(Thread)
            .join(Community, col(Community.id) == Thread.community_id)
            .where(col(Community.producer_id) == producer_id, _in(col(Thread.created_at), window))
            .scalar_subquery()
        )

    def comments(window: Window) -> ScalarSelect:
        return (
            select(func.count())
            .select_from(Comment)
            .join(Thread, col(Thread.id) == Comment.thread_id)
            .join(Community, col(Community.id) == Thread.community_id)
            .where(col(Community.producer_id) == producer_id, _in(col(Comment.created_at), window))
            .scalar_subquery()
        )

    return await _pairs(
        db,
        {
            "new_threads": _both(threads, current, previous),
            "new_comments": _both(comments, current, previous),
        },
    )
