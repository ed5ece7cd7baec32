"""A fast bulk loader for benchmark databases: SQLAlchemy Core `insert()` executemany in big
batches, a few transactions per step, rows proportionate to the number of students.

Per 100 students: 1 course (2 sections x 3 lessons), 1 discussion thread; every student has
one enrollment; 1 comment per 10 students (10 per thread). Everything belongs to one producer
(the worst case for that producer's lists). Five students are named "... Marwick": the name
search of the growth benchmark finds exactly them at every size.

Ids are deterministic (`user_b00000042`) so the benchmark can pick targets without queries.

On PostgreSQL the batches are written with the rollup triggers off and the rollups recounted
after, as a restore would (`_bulk_writing`, `recount_rollups`): a trigger per row would update the
same few rollup rows (a lesson's totals, a course's day) thousands of times in one transaction,
and PostgreSQL keeps every version of a row that a transaction writes, so a batch cost minutes.
SQLite updates a row in place and keeps its triggers on.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

import storage.migrations
from storage.db import Db
from storage.engine import Store
from storage.tables import (
    ROLLUP_TABLES,
    Certificate,
    Comment,
    Community,
    Course,
    Enrollment,
    LearningDay,
    Lesson,
    LessonProgress,
    Member,
    Section,
    Thread,
    User,
)
from tools.domains.accounts import create_api_key, create_producer

__all__ = ["COMMUNITY_ID", "SEARCH_TERM", "BenchTenant", "create_tenant", "load_students", "student_id"]

COMMUNITY_ID = "community_bench"
SEARCH_TERM = "marwick"
_SEARCH_MATCHES = 5
STUDENTS_PER_COURSE = 100
SECTIONS_PER_COURSE = 2
LESSONS_PER_SECTION = 3
_BATCH = 20_000
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""Student i was created (and last changed) EPOCH + i seconds: the newest are the highest numbers."""
_FIRST = [
    "Ana",
    "Bruno",
    "Carla",
    "Diego",
    "Elena",
    "Felipe",
    "Gabriela",
    "Hugo",
    "Iris",
    "Joao",
    "Karin",
    "Lucas",
    "Marta",
    "Nuno",
    "Olga",
    "Pedro",
    "Quinn",
    "Rita",
    "Sergio",
    "Tania",
    "Ugo",
    "Vera",
]
_LAST = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Lima",
    "Pereira",
    "Costa",
    "Rodrigues",
    "Almeida",
    "Nunes",
    "Carvalho",
    "Gomes",
    "Martins",
    "Araujo",
    "Ribeiro",
    "Barbosa",
    "Rocha",
    "Dias",
    "Moreira",
    "Teixeira",
    "Mendes",
    "Freitas",
    "Cardoso",
    "Ramos",
    "Pinto",
    "Correia",
    "Vieira",
    "Monteiro",
    "Castro",
    "Lopes",
]


@dataclass(frozen=True)
class BenchTenant:
    producer_id: str
    owner_user_id: str
    key: str


def student_id(i: int) -> str:
    return f"user_b{i:08d}"


def course_id(c: int) -> str:
    return f"course_b{c:07d}"


def lesson_id(c: int, s: int, n: int) -> str:
    return f"lesson_b{c:07d}_{s}_{n}"


def enrollment_id(i: int) -> str:
    return f"enr_b{i:08d}"


def thread_id(t: int) -> str:
    return f"thread_b{t:07d}"


def _name(i: int) -> str:
    if i < _SEARCH_MATCHES:
        return f"{_FIRST[i]} Marwick"
    return f"{_FIRST[i % len(_FIRST)]} {_LAST[(i * 7919) % len(_LAST)]} {_LAST[(i // 7) % len(_LAST)]}"


async def create_tenant(store: Store, permissions: list[str] | None = None) -> BenchTenant:
    """The benchmark producer, its owner, a full-access key and its community."""
    now = datetime.now(UTC)
    async with store.writing() as db:
        made = await create_producer(
            db,
            name="Bench Academy",
            email="owner@bench.example",
            password="bench-password-1",
            clock=lambda: now,
        )
        key = await create_api_key(
            db,
            producer_id=made.producer.id,
            name="bench",
            permissions=permissions or ["*"],
            clock=lambda: now,
        )
        db.session.add(
            Community(
                id=COMMUNITY_ID,
                producer_id=made.producer.id,
                name="Bench community",
                slug="bench-community",
                created_at=now,
                updated_at=now,
            )
        )
    return BenchTenant(producer_id=made.producer.id, owner_user_id=made.owner.id, key=key.key)


async def add_key(store: Store, tenant: BenchTenant, permissions: list[str]) -> str:
    now = datetime.now(UTC)
    async with store.writing() as db:
        made = await create_api_key(
            db,
            producer_id=tenant.producer_id,
            name=" ".join(permissions),
            permissions=permissions,
            clock=lambda: now,
        )
    return made.key


def _rows_for(tenant: BenchTenant, start: int, stop: int) -> dict[type, list[dict]]:
    """Every row for students [start, stop) (both multiples of STUDENTS_PER_COURSE)."""
    producer = tenant.producer_id
    rows: dict[type, list[dict]] = {
        table: [] for table in (User, Course, Section, Lesson, Enrollment, Thread, Comment)
    }
    for i in range(start, stop):
        at = EPOCH + timedelta(seconds=i)
        rows[User].append(
            {
                "id": student_id(i),
                "producer_id": producer,
                "name": _name(i),
                "email": f"s{i}@bench.example",
                "email_normalized": f"s{i}@bench.example",
                "password_hash": None,
                "avatar_url": None,
                "bio": None,
                "role": "student",
                "created_at": at,
                "updated_at": at,
            }
        )
    for c in range(start // STUDENTS_PER_COURSE, stop // STUDENTS_PER_COURSE):
        at = EPOCH + timedelta(seconds=c * STUDENTS_PER_COURSE)
        rows[Course].append(
            {
                "id": course_id(c),
                "producer_id": producer,
                "category_id": "cat_web_development",
                "title": f"Course {c}",
                "slug": f"bench-course-{c}",
                "description": None,
                "short_description": None,
                "thumbnail_url": None,
                "trailer_url": None,
                "price": 0,
                "is_free": True,
                "level": None,
                "published": c % 2 == 0,
                "published_at": at if c % 2 == 0 else None,
                "created_at": at,
                "updated_at": at,
            }
        )
        for s in range(SECTIONS_PER_COURSE):
            section = f"section_b{c:07d}_{s}"
            rows[Section].append(
                {
                    "id": section,
                    "course_id": course_id(c),
                    "title": f"Section {s}",
                    "order": s,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            for n in range(LESSONS_PER_SECTION):
                rows[Lesson].append(
                    {
                        "id": lesson_id(c, s, n),
                        "section_id": section,
                        "course_id": course_id(c),
                        "title": f"Lesson {n}",
                        "description": None,
                        "duration": 300,
                        "video_url": None,
                        "video_type": None,
                        "video_id": None,
                        "video_thumbnail_url": None,
                        "video_original_url": None,
                        "is_preview": False,
                        "order": n,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
        rows[Thread].append(
            {
                "id": thread_id(c),
                "community_id": COMMUNITY_ID,
                "author_id": tenant.owner_user_id,
                "title": f"Thread {c}",
                "content": "Welcome!",
                "pinned": False,
                "comment_count": STUDENTS_PER_COURSE // 10,
                "last_activity_at": at,
                "created_at": at,
                "updated_at": at,
            }
        )
    for i in range(start, stop):
        at = EPOCH + timedelta(seconds=i)
        rows[Enrollment].append(
            {
                "id": enrollment_id(i),
                "producer_id": producer,
                "student_id": student_id(i),
                "course_id": course_id(i // STUDENTS_PER_COURSE),
                "enrolled_at": at,
                "completed_at": None,
                "updated_at": at,
            }
        )
        if i % 10 == 0:
            rows[Comment].append(
                {
                    "id": f"comment_b{i:08d}",
                    "thread_id": thread_id(i // STUDENTS_PER_COURSE),
                    "parent_id": None,
                    "author_id": student_id(i),
                    "content": f"Comment {i}",
                    "created_at": at,
                    "updated_at": at,
                }
            )
    return rows


async def _without_triggers(db: Db) -> bool:
    """Whether this PostgreSQL transaction could turn its triggers off (a superuser's only)."""
    if db.dialect.name != "postgresql":
        return False
    if not (
        await db.session.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    ).scalar():
        return False
    await db.session.execute(text("SET LOCAL session_replication_role = replica"))
    return True


@asynccontextmanager
async def _bulk_writing(store: Store) -> AsyncIterator[Db]:
    """A write transaction for a batch: on PostgreSQL, with the rollup triggers off when the
    benchmark's user may turn them off (see the module's docstring); `recount_rollups` after."""
    async with store.writing() as db:
        await _without_triggers(db)
        yield db


def _rollup_recount() -> list[str]:
    """The statements with which migration 0017 filled the rollups, for PostgreSQL."""
    path = Path(storage.migrations.__file__).parent / "versions" / "0017_insight_rollups.py"
    spec = importlib.util.spec_from_file_location("blohko_migration_0017", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration._backfill(migration._Sql(migration._POSTGRESQL))


async def recount_rollups(store: Store) -> None:
    """On PostgreSQL, after batches written without triggers: every rollup counted afresh, then
    the tables vacuumed and analyzed, as autovacuum would have left them by the time a school of
    this size had grown (fresh rows have no statistics, and the recount's delete leaves dead
    rows behind)."""
    async with store.writing() as db:
        if not await _without_triggers(db):
            return
        for table in sorted(ROLLUP_TABLES):
            await db.session.execute(text(f"DELETE FROM {table}"))
        await db.session.execute(
            text(
                "UPDATE enrollments SET lessons_started = 0, lessons_completed = 0 WHERE lessons_started <> 0"
            )
        )
        for statement in _rollup_recount():
            await db.session.execute(text(statement))
    connection = await asyncpg.connect(
        make_url(store.url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()


async def load_students(store: Store, tenant: BenchTenant, start: int, stop: int) -> None:
    """Add students [start, stop) and their proportionate rows, in batches of one transaction each."""
    step = _BATCH
    for low in range(start, stop, step):
        high = min(stop, low + step)
        rows = _rows_for(tenant, low, high)
        async with _bulk_writing(store) as db:
            for table, batch in rows.items():
                if batch:
                    await db.session.execute(insert(table), batch)
    await recount_rollups(store)
    await store.checkpoint()


OVERHEAD_COURSE_ID = "course_overhead"


async def add_overhead_course(store: Store, tenant: BenchTenant) -> None:
    """The course `get_course` reads in the overhead benchmark: 3 sections x 5 lessons."""
    at = EPOCH
    async with store.writing() as db:
        await db.session.execute(
            insert(Course),
            [
                {
                    "id": OVERHEAD_COURSE_ID,
                    "producer_id": tenant.producer_id,
                    "category_id": "cat_web_development",
                    "title": "Overhead course",
                    "slug": "bench-overhead-course",
                    "description": "A course of 3 x 5 lessons.",
                    "short_description": None,
                    "thumbnail_url": None,
                    "trailer_url": None,
                    "price": 0,
                    "is_free": True,
                    "level": "beginner",
                    "published": True,
                    "published_at": at,
                    "created_at": at,
                    "updated_at": at,
                }
            ],
        )
        sections, lessons = [], []
        for s in range(3):
            sections.append(
                {
                    "id": f"section_oh_{s}",
                    "course_id": OVERHEAD_COURSE_ID,
                    "title": f"Section {s}",
                    "order": s,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            for n in range(5):
                lessons.append(
                    {
                        "id": f"lesson_oh_{s}_{n}",
                        "section_id": f"section_oh_{s}",
                        "course_id": OVERHEAD_COURSE_ID,
                        "title": f"Lesson {n}",
                        "description": "A lesson.",
                        "duration": 300,
                        "video_url": "https://www.youtube.com/embed/dQw4w9WgXcQ",
                        "video_type": "youtube",
                        "video_id": "dQw4w9WgXcQ",
                        "video_thumbnail_url": "https://img.youtube.com/vi/dQw4w9WgXcQ/hqdefault.jpg",
                        "video_original_url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                        "is_preview": n == 0,
                        "order": n,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
        await db.session.execute(insert(Section), sections)
        await db.session.execute(insert(Lesson), lessons)


# --- section 8: one large course and a lively community, for the insight operations ----------------

INSIGHT_COURSE_ID = "course_insight"
INSIGHT_COMMUNITY_ID = "community_insight"
INSIGHT_SECTIONS = 2
INSIGHT_LESSONS_PER_SECTION = 5
INSIGHT_SHARE = 10
"""One enrollment in the large course per 10 students: 100,000 at 1,000,000 students."""


def insight_enrollments(students: int) -> int:
    return students // INSIGHT_SHARE


def _insight_lessons() -> list[tuple[str, str, int]]:
    """(lesson id, section id, order) in curriculum order."""
    return [
        (f"lesson_ins_{s}_{n}", f"section_ins_{s}", n)
        for s in range(INSIGHT_SECTIONS)
        for n in range(INSIGHT_LESSONS_PER_SECTION)
    ]


def _insight_enrollment(j: int, now: datetime) -> dict:
    """Enrollment j of the large course, deterministic: how far it got and when it fell silent.

    15% never start; the others reach lesson k+1 from lesson k with probability 0.8, so the funnel
    narrows lesson by lesson and about 10% finish. Silence since the last progress: 60% within the
    week, 25% 1-4 weeks, 15% 4-9 weeks."""
    h = (j * 2654435761) % 4_294_967_296
    lessons = INSIGHT_SECTIONS * INSIGHT_LESSONS_PER_SECTION
    depth = 0
    if h % 100 >= 15:
        depth, bits = 1, h // 100
        while depth < lessons and bits % 10 < 8:
            depth, bits = depth + 1, bits // 10 or (bits + j + depth)
    band = (h // 7) % 100
    silent_days = (h // 11) % 7 if band < 60 else (7 + (h // 11) % 22 if band < 85 else 28 + (h // 11) % 35)
    last = now - timedelta(days=silent_days, seconds=(h // 13) % 86_400)
    enrolled = last - timedelta(days=depth * 2, seconds=j % 3_600)
    return {"depth": depth, "last": last, "enrolled": enrolled, "finished": depth == lessons}


async def load_insight_course(
    store: Store, tenant: BenchTenant, *, students: int, start: int, stop: int, now: datetime
) -> None:
    """Enrollments [start, stop) of the large course (created with the first), of students
    0, 10, 20, ... (`students` must be loaded), with their lesson progress, learning days and
    certificates; and the insight community's members, threads and comments in proportion (a
    thread per 20 enrollments, 5 comments per thread but every 5th thread answered only by its
    author), spread over the last 30 days."""
    producer = tenant.producer_id
    stride = max(1, students // max(1, insight_enrollments(students)))
    lessons = _insight_lessons()
    if start == 0:
        at = now - timedelta(days=400)
        async with store.writing() as db:
            await db.session.execute(
                insert(Course),
                [
                    {
                        "id": INSIGHT_COURSE_ID,
                        "producer_id": producer,
                        "category_id": "cat_web_development",
                        "title": "Insight course",
                        "slug": "bench-insight-course",
                        "description": None,
                        "short_description": None,
                        "thumbnail_url": None,
                        "trailer_url": None,
                        "price": 0,
                        "is_free": True,
                        "level": None,
                        "published": True,
                        "published_at": at,
                        "created_at": at,
                        "updated_at": at,
                    }
                ],
            )
            await db.session.execute(
                insert(Section),
                [
                    {
                        "id": f"section_ins_{s}",
                        "course_id": INSIGHT_COURSE_ID,
                        "title": f"Part {s + 1}",
                        "order": s,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for s in range(INSIGHT_SECTIONS)
                ],
            )
            await db.session.execute(
                insert(Lesson),
                [
                    {
                        "id": lesson,
                        "section_id": section,
                        "course_id": INSIGHT_COURSE_ID,
                        "title": f"Lesson {index + 1}",
                        "description": None,
                        "duration": 600,
                        "video_url": None,
                        "video_type": None,
                        "video_id": None,
                        "video_thumbnail_url": None,
                        "video_original_url": None,
                        "is_preview": False,
                        "order": order,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for index, (lesson, section, order) in enumerate(lessons)
                ],
            )
            db.session.add(
                Community(
                    id=INSIGHT_COMMUNITY_ID,
                    producer_id=producer,
                    name="Insight community",
                    slug="bench-insight-community",
                    created_at=at,
                    updated_at=at,
                )
            )
    for low in range(start, stop, _BATCH):
        high = min(stop, low + _BATCH)
        rows: dict[type, list[dict]] = {
            table: []
            for table in (Enrollment, LessonProgress, Certificate, LearningDay, Member, Thread, Comment)
        }
        for j in range(low, high):
            student = student_id(j * stride)
            shape = _insight_enrollment(j, now)
            depth, last = shape["depth"], shape["last"]
            enrollment = f"enr_ins{j:07d}"
            rows[Enrollment].append(
                {
                    "id": enrollment,
                    "producer_id": producer,
                    "student_id": student,
                    "course_id": INSIGHT_COURSE_ID,
                    "enrolled_at": shape["enrolled"],
                    "completed_at": last if shape["finished"] else None,
                    "updated_at": last if depth else shape["enrolled"],
                }
            )
            for k in range(depth):
                done = k < depth - 1 or shape["finished"] or j % 2 == 0
                at = last - timedelta(days=2 * (depth - 1 - k))
                rows[LessonProgress].append(
                    {
                        "enrollment_id": enrollment,
                        "lesson_id": lessons[k][0],
                        "completed": done,
                        "watched_seconds": 600 if done else (j * 37) % 600,
                        "completed_at": at if done else None,
                    }
                )
            if depth:
                rows[LearningDay].append({"student_id": student, "day": last.date()})
            if shape["finished"]:
                rows[Certificate].append(
                    {
                        "id": f"cert_ins{j:07d}",
                        "enrollment_id": enrollment,
                        "verification_code": f"verify-ins-{j:07d}",
                        "issued_at": last,
                    }
                )
            joined = now - timedelta(days=j % 30, seconds=j % 86_400)
            rows[Member].append(
                {
                    "id": f"member_ins{j:07d}",
                    "community_id": INSIGHT_COMMUNITY_ID,
                    "user_id": student,
                    "role": "member",
                    "joined_at": joined,
                    "updated_at": joined,
                }
            )
            if j % 20 == 0:
                t = j // 20
                thread = f"thread_ins{t:07d}"
                asked = now - timedelta(days=t % 30, seconds=(t * 7919) % 86_400)
                answered = t % 5 != 0
                comments = []
                for c in range(5):
                    author = student_id(((j + 1 + c) % max(1, high)) * stride) if answered else student
                    at = asked + timedelta(minutes=10 * (c + 1))
                    if at >= now:
                        continue
                    comments.append(
                        {
                            "id": f"comment_ins{t:07d}_{c}",
                            "thread_id": thread,
                            "parent_id": None,
                            "author_id": author,
                            "content": f"Reply {c}",
                            "created_at": at,
                            "updated_at": at,
                        }
                    )
                rows[Thread].append(
                    {
                        "id": thread,
                        "community_id": INSIGHT_COMMUNITY_ID,
                        "author_id": student,
                        "title": f"Question {t}",
                        "content": "How do I ...?",
                        "pinned": False,
                        "comment_count": len(comments),
                        "last_activity_at": comments[-1]["created_at"] if comments else asked,
                        "created_at": asked,
                        "updated_at": asked,
                    }
                )
                rows[Comment] += comments
        async with _bulk_writing(store) as db:
            for table, batch in rows.items():
                if batch:
                    await db.session.execute(_insert_new(db.dialect.name, table), batch)
    await recount_rollups(store)
    await store.checkpoint()


def _insert_new(dialect: str, table: type) -> Any:
    """An insert that skips a learning day the growth section's `update_progress` already recorded."""
    if table is not LearningDay:
        return insert(table)
    return (sqlite_insert if dialect == "sqlite" else postgresql_insert)(table).on_conflict_do_nothing()
