"""Test data for enrollments and progress, built through the tools."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mcp import Client
from sqlalchemy import func, select

from storage.engine import Store
from storage.tables import (
    Achievement,
    Certificate,
    Enrollment,
    LearningDay,
    LessonProgress,
)
from tests.support.community_factories import call, new_student
from tests.support.databases import ENGINE
from tests.support.factories import make_course

ENROLLMENT_TABLES = (Enrollment, LessonProgress, Certificate, LearningDay, Achievement)


@dataclass
class Learner:
    """A student enrolled in a fresh course; `lesson_ids` in curriculum order."""

    student_id: str
    course_id: str
    enrollment_id: str
    lesson_ids: list[str]


async def new_course(client: Client, lessons: int = 3, **fields: Any) -> tuple[str, list[str]]:
    """A course with one section of `lessons` lessons: its id and the lesson ids in order."""
    section = {"title": "Only section", "lessons": [{"title": f"Lesson {n + 1}"} for n in range(lessons)]}
    course = await make_course(client, sections=[section], **fields)
    return course["id"], [lesson["id"] for lesson in course["sections"][0]["lessons"]]


async def enroll(client: Client, student_id: str, course_id: str) -> dict[str, Any]:
    return (await call(client, "enroll_student", studentId=student_id, courseId=course_id))["enrollment"]


async def new_learner(client: Client, lessons: int = 3, *, student_id: str | None = None) -> Learner:
    """Enroll a student (a new one unless given) in a new course of `lessons` lessons."""
    student_id = student_id or await new_student(client)
    course_id, lesson_ids = await new_course(client, lessons)
    enrollment = await enroll(client, student_id, course_id)
    return Learner(student_id, course_id, enrollment["id"], lesson_ids)


async def progress(client: Client, enrollment_id: str, lesson_id: str, **fields: Any) -> dict[str, Any]:
    """`update_progress` marking `lesson_id` completed unless `fields` say otherwise; its whole result."""
    arguments = {"enrollmentId": enrollment_id, "lessonId": lesson_id, "completed": True, **fields}
    return await call(client, "update_progress", **arguments)


def codes(result: dict[str, Any]) -> list[str]:
    """The codes of the achievements an `update_progress` result reports as new."""
    return [achievement["code"] for achievement in result["events"]["newAchievements"]]


async def table_counts(store: Store) -> dict[str, int]:
    """Rows in each enrollment table, across all producers."""
    async with store.sessions() as session:
        return {
            str(table.__tablename__): (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
            for table in ENROLLMENT_TABLES
        }


def overlap_is_as_the_engine_allows(peak: int) -> bool:
    """SQLite: concurrent writes took turns in the process (peak 1); PostgreSQL: they overlapped."""
    return peak == 1 if ENGINE == "sqlite" else peak > 1


@asynccontextmanager
async def peak_write_sessions(store: Store) -> AsyncIterator[Callable[[], int]]:
    """Count write transactions open at once while the context lasts (`Store.writing`); yields a
    reader of the peak.

    On PostgreSQL a peak above 1 shows that concurrent calls really overlapped in the database;
    on SQLite the peak is 1: writes take turns in the process (`storage.engine.WriteGate`)."""
    originals = {"writing": store.writing}
    open_now = peak = 0

    def counted(original):
        @asynccontextmanager
        async def opened():
            nonlocal open_now, peak
            async with original() as transaction:
                open_now += 1
                peak = max(peak, open_now)
                try:
                    yield transaction
                finally:
                    open_now -= 1

        return opened

    for name, original in originals.items():
        setattr(store, name, counted(original))
    try:
        yield lambda: peak
    finally:
        for name, original in originals.items():
            setattr(store, name, original)
