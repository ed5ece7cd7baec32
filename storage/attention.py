"""Stalled enrollments in the store: who stopped learning, where, and what comes next.

Read by `find_students_needing_attention`. An enrollment's activity is its lesson progress: each
`update_progress` that changes a lesson's progress moves the enrollment's `updated_at` (at
enrollment, `updated_at` is `enrolled_at`), so `updated_at` is when it was last active, or
enrolled if it never was. Its silence runs from that UTC day, and the list walks
`ix_enrollments_producer_updated` (or `ix_enrollments_course_updated`) in that order, reading the
lessons it started and completed from the enrollment's own rollup columns. A page is a fixed number
of statements however many enrollments the school has: the page, its total when the page is not
all of it (summed from the course activity rollup, never counted), the next lessons and the
streaks of its rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, Select, cast, exists, func, select
from sqlmodel import col

from storage.db import Db
from storage.queries import count_where
from storage.tables import (
    Course,
    CourseActivity,
    Enrollment,
    LearningDay,
    Lesson,
    LessonProgress,
    Section,
    User,
)

__all__ = [
    "StalledEnrollment",
    "current_streaks",
    "next_lessons",
    "stalled_enrollments",
]


@dataclass(frozen=True)
class StalledEnrollment:
    """An enrollment silent since `silent_since`, with its names and lesson counts."""

    enrollment_id: str
    student_id: str
    student_name: str
    course_id: str
    course_title: str
    enrolled_at: datetime
    silent_since: datetime
    """Its last lesson progress change, or its enrollment if it never started."""
    started: bool
    """Whether it has any lesson progress."""
    completed_lessons: int
    total_lessons: int


def _lessons_of(course_id: Any) -> Any:
    return count_where(Lesson, col(Lesson.course_id) == course_id)


def _below(done: Any, total: Any, max_percent: int) -> Any:
    """percent(done, total) < max_percent, as tools.domains.enrollments.percent rounds it, or a
    course without lessons: below 100 is any lesson left; below M < 100 is round(100 * done / total)
    < M, i.e. 200 done < total (2M - 1)."""
    below = done < total if max_percent >= 100 else 200 * done < total * (2 * max_percent - 1)
    return (total == 0) | below


def _stalled_query(
    *,
    producer_id: str,
    silent_before: datetime,
    max_percent: int,
    course_id: str | None,
    never_started: bool,
) -> Select:
    total = _lessons_of(Enrollment.course_id).correlate(Enrollment)
    statement = (
        select(
            col(Enrollment.id),
            col(Enrollment.student_id),
            col(User.name),
            col(Enrollment.course_id),
            col(Course.title),
            col(Enrollment.enrolled_at),
            col(Enrollment.updated_at),
            col(Enrollment.lessons_started),
            col(Enrollment.lessons_completed),
            total.label("total"),
        )
        .join(User, col(User.id) == Enrollment.student_id)
        .join(Course, col(Course.id) == Enrollment.course_id)
        .where(
            col(Enrollment.producer_id) == producer_id,
            col(Enrollment.updated_at) < silent_before,
            _below(col(Enrollment.lessons_completed), total, max_percent),
        )
    )
    if course_id is not None:
        statement = statement.where(col(Enrollment.course_id) == course_id)
    if never_started:
        statement = statement.where(col(Enrollment.lessons_started) == 0)
    return statement.order_by(col(Enrollment.updated_at), col(Enrollment.id))


async def _stalled_total(
    db: Db,
    *,
    producer_id: str,
    last_silent_day: date,
    max_percent: int,
    course_id: str | None,
    never_started: bool,
) -> int:
    """How many enrollments `_stalled_query` finds, summed from the course activity rollup: a row
    per course, day and lessons completed, however many enrollments there are, each against its
    course's lesson count (counted once per course). One statement."""
    courses = select(col(Course.id).label("course_id"), func.count(col(Lesson.id)).label("lessons"))
    courses = courses.outerjoin(Lesson, col(Lesson.course_id) == Course.id).where(
        col(Course.producer_id) == producer_id
    )
    if course_id is not None:
        courses = courses.where(col(Course.id) == course_id)
    counted = courses.group_by(col(Course.id)).subquery()
    statement = (
        select(func.coalesce(func.sum(col(CourseActivity.enrollments)), 0))
        .join(counted, counted.c.course_id == CourseActivity.course_id)
        .where(
            col(CourseActivity.day) <= last_silent_day,
            _below(col(CourseActivity.lessons_completed), counted.c.lessons, max_percent),
        )
    )
    if never_started:
        statement = statement.where(col(CourseActivity.started) == 0)
    return int((await db.session.execute(statement)).scalar_one())


async def stalled_enrollments(
    db: Db,
    *,
    producer_id: str,
    last_silent_day: date,
    max_percent: int,
    course_id: str | None = None,
    never_started: bool = False,
    offset: int,
    limit: int,
) -> tuple[list[StalledEnrollment], int]:
    """One page of the producer's enrollments whose last lesson progress change (or enrollment, if
    none) fell on `last_silent_day` or before, whose rounded progress percent is below
    `max_percent`, longest silence first, and how many there are in all. Optionally of one course,
    and only those never started."""
    session = db.session
    scope = {
        "producer_id": producer_id,
        "max_percent": max_percent,
        "course_id": course_id,
        "never_started": never_started,
    }
    silent_before = datetime.combine(last_silent_day + timedelta(days=1), time.min, tzinfo=UTC)
    statement = _stalled_query(silent_before=silent_before, **scope)
    rows = [
        StalledEnrollment(
            enrollment_id=row.id,
            student_id=row.student_id,
            student_name=row.name,
            course_id=row.course_id,
            course_title=row.title,
            enrolled_at=row.enrolled_at,
            silent_since=row.updated_at,
            started=row.lessons_started > 0,
            completed_lessons=row.lessons_completed,
            total_lessons=row.total,
        )
        for row in (await session.execute(statement.offset(offset).limit(limit))).all()
    ]
    if offset == 0 and len(rows) < limit:
        return rows, len(rows)  # the page holds everything: no need to count
    return rows, await _stalled_total(db, last_silent_day=last_silent_day, **scope)


async def next_lessons(db: Db, *, enrollment_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Each enrollment's first lesson not completed, in curriculum order (section, then lesson), as
    (id, title); absent when every lesson is completed or the course has none. One statement."""
    session = db.session
    first_open = (
        select(col(Lesson.id))
        .join(Section, col(Section.id) == Lesson.section_id)
        .where(
            col(Lesson.course_id) == Enrollment.course_id,
            ~exists()
            .where(
                col(LessonProgress.enrollment_id) == Enrollment.id,
                col(LessonProgress.lesson_id) == Lesson.id,
                col(LessonProgress.completed).is_(True),
            )
            .correlate(Enrollment, Lesson),
        )
        .order_by(col(Section.order), col(Section.id), col(Lesson.order), col(Lesson.id))
        .limit(1)
        .correlate(Enrollment)
        .scalar_subquery()
    )
    page = (
        select(col(Enrollment.id).label("enrollment_id"), first_open.label("lesson_id"))
        .where(col(Enrollment.id).in_(set(enrollment_ids)))
        .subquery()
    )
    statement = select(page.c.enrollment_id, col(Lesson.id), col(Lesson.title)).join(
        Lesson, col(Lesson.id) == page.c.lesson_id
    )
    return {
        enrollment_id: (lesson_id, title)
        for enrollment_id, lesson_id, title in (await session.execute(statement)).all()
    }


def _day_number(db: Db, day: Any) -> Any:
    """A day as a whole number, consecutive days consecutive numbers (engines count days apart)."""
    if db.dialect.name == "sqlite":
        return cast(func.julianday(day), Integer)
    return day - date(1970, 1, 1)  # date - date is an integer on PostgreSQL


async def current_streaks(db: Db, *, student_ids: Iterable[str], today: date) -> dict[str, int]:
    """Each student's current streak on `today`: the run of consecutive learning days ending today,
    or yesterday (days after `today` are ignored), as `tools.domains.streaks.streaks` counts it;
    absent: 0. One statement: consecutive days share `day number - row number`."""
    session = db.session
    days = col(LearningDay.day)
    numbered = (
        select(
            col(LearningDay.student_id).label("student_id"),
            days.label("day"),
            (
                _day_number(db, days)
                - func.row_number().over(partition_by=col(LearningDay.student_id), order_by=days)
            ).label("run"),
        )
        .where(col(LearningDay.student_id).in_(set(student_ids)), days <= today)
        .subquery()
    )
    yesterday = date.fromordinal(today.toordinal() - 1)
    statement = (
        select(numbered.c.student_id, func.count())
        .group_by(numbered.c.student_id, numbered.c.run)
        .having(func.max(numbered.c.day) >= yesterday)
    )
    return {student_id: length for student_id, length in (await session.execute(statement)).all()}
