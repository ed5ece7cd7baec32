"""A fast bulk loader for benchmark databases: SQLAlchemy Core `insert()` executemany in big
batches, a few transactions per step, rows proportionate to the number of students.

Per 100 students: 1 course (2 sections x 3 lessons), 1 discussion thread; every student has
one enrollment; 1 comment per 10 students (10 per thread). Everything belongs to one producer
(the worst case for that producer's lists). Five students are named "... Marwick": the name
search of the growth benchmark finds exactly them at every size.

Ids are deterministic (`user_b00000042`) so the benchmark can pick targets without queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from storage.engine import Store
from storage.tables import (
    Comment,
    Community,
    Course,
    Enrollment,
    Lesson,
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


async def load_students(store: Store, tenant: BenchTenant, start: int, stop: int) -> None:
    """Add students [start, stop) and their proportionate rows, in batches of one transaction each."""
    step = _BATCH
    for low in range(start, stop, step):
        high = min(stop, low + step)
        rows = _rows_for(tenant, low, high)
        async with store.writing() as db:
            for table, batch in rows.items():
                if batch:
                    await db.session.execute(insert(table), batch)
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
