"""Insights in the store: one course's figures and lesson funnel, and a school's period report.

Read by `tools.domains.insights`. Nothing here counts rows: every figure is a sum over the rollups
the database's triggers keep (`storage.tables`, migration 0017), so an answer reads a number of rows
set by the course's lessons and the days of its windows, however many students the school has. A
course's summary is one statement and its funnel one; each part of the school report (students,
learning, community) one statement of scalar subqueries. Windows are whole UTC days, `[first_day,
end_day)`; every statement is filtered by the producer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ScalarSelect, func, select
from sqlmodel import col

from storage.db import Db
from storage.tables import (
    Course,
    CourseActivity,
    CourseDay,
    LearningGap,
    Lesson,
    LessonTotal,
    SchoolDay,
    Section,
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

SECONDS_PER_DAY = 86_400


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
    """The UTC days `[first_day, end_day)`: from midnight `since` to midnight `until`."""

    since: datetime
    until: datetime
    first_day: date
    end_day: date


def _total(column: Any, *conditions: Any) -> ScalarSelect:
    return select(func.coalesce(func.sum(column), 0)).where(*conditions).scalar_subquery()


async def course_summary(db: Db, *, producer_id: str, course_id: str, today: date) -> CourseSummary | None:
    """The course's title and figures, or None when the producer has no such course. One statement.
    Active in the last N days: enrollments that started and whose last progress change
    (`Enrollment.updated_at`) fell on one of the N UTC days ending `today`."""
    session = db.session
    of_course = col(CourseDay.course_id) == course_id

    def active(days: int) -> ScalarSelect:
        return _total(
            col(CourseActivity.enrollments),
            col(CourseActivity.course_id) == course_id,
            col(CourseActivity.day) >= today - timedelta(days=days - 1),
            col(CourseActivity.day) <= today,
            col(CourseActivity.started) == 1,
        )

    statement = select(
        col(Course.title),
        _total(col(CourseDay.enrollments), of_course),
        _total(col(CourseDay.courses_completed), of_course),
        _total(col(CourseDay.certificates), of_course),
        _total(col(CourseDay.completion_seconds), of_course),
        active(7),
        active(30),
    ).where(col(Course.id) == course_id, col(Course.producer_id) == producer_id)
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    title, enrollments, completed, certificates, seconds, week, month = row
    return CourseSummary(
        title=title,
        enrollments=int(enrollments),
        completed=int(completed),
        certificates=int(certificates),
        average_days_to_complete=int(seconds) / int(completed) / SECONDS_PER_DAY if completed else None,
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
            func.coalesce(col(LessonTotal.started), 0),
            func.coalesce(col(LessonTotal.completed), 0),
            func.coalesce(col(LessonTotal.watched_seconds), 0),
        )
        .join(Section, col(Section.id) == Lesson.section_id)
        .join(Course, col(Course.id) == Lesson.course_id)
        .outerjoin(LessonTotal, col(LessonTotal.lesson_id) == Lesson.id)
        .where(col(Lesson.course_id) == course_id, col(Course.producer_id) == producer_id)
        .order_by(col(Section.order), col(Section.id), col(Lesson.order), col(Lesson.id))
    )
    return [
        FunnelLesson(
            lesson_id=lesson_id,
            title=title,
            section_id=section_id,
            section_title=section_title,
            started=int(started),
            completed=int(done),
            average_watched_seconds=int(watched) / int(started) if started else None,
        )
        for lesson_id, title, section_id, section_title, started, done, watched in (
            await session.execute(statement)
        ).all()
    ]


async def _pairs(db: Db, counts: dict[str, tuple[ScalarSelect, ScalarSelect]]) -> dict[str, tuple[int, int]]:
    """Each named (current, previous) pair of scalar subqueries, in one statement."""
    session = db.session
    columns = [
        subquery.label(f"{name}_{i}") for name, pair in counts.items() for i, subquery in enumerate(pair)
    ]
    row = (await session.execute(select(*columns))).one()
    values = [int(value or 0) for value in row]
    return {name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(counts)}


def _days(column: Any, window: Window) -> tuple[Any, Any]:
    return column >= window.first_day, column < window.end_day


def _school_total(producer_id: str, column: Any) -> Any:
    """A window's sum of one of the school's day figures (`SchoolDay`): a row a day."""

    def make(window: Window) -> ScalarSelect:
        return _total(column, col(SchoolDay.producer_id) == producer_id, *_days(col(SchoolDay.day), window))

    return make


async def student_counts(
    db: Db, *, producer_id: str, current: Window, previous: Window
) -> dict[str, tuple[int, int]]:
    """New students (registered, and not deleted) in each window. One statement."""

    new_students = _school_total(producer_id, col(SchoolDay.new_students))
    return await _pairs(db, {"new_students": (new_students(current), new_students(previous))})


async def learning_counts(
    db: Db, *, producer_id: str, current: Window, previous: Window
) -> dict[str, tuple[int, int]]:
    """Enrollments made, lessons completed, courses completed, certificates issued and active
    learners (distinct students with a learning day in the window: the learning days in it whose
    student's previous one is before it) in each window. One statement."""

    def active_learners(window: Window) -> ScalarSelect:
        return _total(
            col(LearningGap.learners),
            col(LearningGap.producer_id) == producer_id,
            *_days(col(LearningGap.day), window),
            col(LearningGap.previous_day) < window.first_day,
        )

    makers = {
        "enrollments": _school_total(producer_id, col(SchoolDay.enrollments)),
        "lessons_completed": _school_total(producer_id, col(SchoolDay.lessons_completed)),
        "courses_completed": _school_total(producer_id, col(SchoolDay.courses_completed)),
        "certificates": _school_total(producer_id, col(SchoolDay.certificates)),
        "active_learners": active_learners,
    }
    return await _pairs(db, {name: (make(current), make(previous)) for name, make in makers.items()})


async def community_counts(
    db: Db, *, producer_id: str, current: Window, previous: Window
) -> dict[str, tuple[int, int]]:
    """Threads and comments made (and not deleted) in each window, in the producer's communities.
    One statement."""

    threads = _school_total(producer_id, col(SchoolDay.threads))
    comments = _school_total(producer_id, col(SchoolDay.comments))
    return await _pairs(
        db,
        {
            "new_threads": (threads(current), threads(previous)),
            "new_comments": (comments(current), comments(previous)),
        },
    )
