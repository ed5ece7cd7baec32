"""Courses, sections and lessons in the store. Functions return None for "not found".

Sections (within a course) and lessons (within a section) carry a dense 0-based `order`.
The positional helpers keep it dense: they shift siblings with one UPDATE each, in the
caller's transaction. Callers lock the course first (`get_course(..., lock=True)`), so
concurrent edits of one curriculum take turns instead of computing the same position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute
from sqlmodel import col

from storage.db import Db
from storage.ids import new_id
from storage.queries import add_row, contains_text, count_where, update_row
from storage.statements import PreparedQuery
from storage.tables import Course, Enrollment, Lesson, Section

__all__ = [
    "NewSection",
    "add_course",
    "add_curriculum",
    "add_lesson",
    "add_section",
    "count_course_contents",
    "count_lessons",
    "course_with_curriculum",
    "courses_query",
    "delete_course",
    "delete_in_order",
    "get_course",
    "get_lesson",
    "get_section",
    "insert_position",
    "lessons_of_course",
    "lessons_of_section",
    "move_to",
    "sections_of_course",
    "slug_taken",
    "update_course",
    "update_in_order",
]


def _prefixed(table: Table, prefix: str) -> list:
    return [column.label(f"{prefix}.{column.key}") for column in table.columns]


_COURSE_WITH_CURRICULUM_STATEMENT = (
    select(
        *_prefixed(Course.__table__, "course"),
        *_prefixed(Section.__table__, "section"),
        *_prefixed(Lesson.__table__, "lesson"),
    )
    .select_from(Course)
    .outerjoin(Section, col(Section.course_id) == Course.id)
    .outerjoin(Lesson, col(Lesson.section_id) == Section.id)
    .where(col(Course.id) == bindparam("course_id"), col(Course.producer_id) == bindparam("producer_id"))
    .order_by(col(Section.order), col(Section.id), col(Lesson.order), col(Lesson.id))
)
_COURSE_WITH_CURRICULUM = PreparedQuery(_COURSE_WITH_CURRICULUM_STATEMENT)


# Which of the joined row's columns are the course's, a section's, a lesson's: (label, column key).
_PARTS = {
    prefix: tuple((f"{prefix}.{column.key}", column.key) for column in table.columns)
    for prefix, table in (
        ("course", Course.__table__),
        ("section", Section.__table__),
        ("lesson", Lesson.__table__),
    )
}
_LABELS = [column.key for column in _COURSE_WITH_CURRICULUM_STATEMENT.selected_columns]
_SECTION_ID_AT, _LESSON_ID_AT = _LABELS.index("section.id"), _LABELS.index("lesson.id")
"""Where a joined row holds the section's id and the lesson's (ids need no processing)."""

Columns = dict[str, Any]


async def course_with_curriculum(
    db: Db, *, producer_id: str, course_id: str
) -> tuple[Columns, list[Columns], list[Columns]] | None:
    """A course of `producer_id` with its sections and their lessons, each in order, as the columns
    of each row, in one statement (a row per lesson, or per empty section); None if the producer
    has no such course. Plain values, not models: a model costs more to build than the read. The
    course's columns repeat on every row: they are processed once, a section's once."""
    rows = await db.raw(_COURSE_WITH_CURRICULUM, producer_id=producer_id, course_id=course_id)
    if not rows:
        return None
    course, section, lesson = (db.picker(_COURSE_WITH_CURRICULUM, _PARTS[part]) for part in _PARTS)
    sections: dict[str, Columns] = {}
    lessons = []
    for row in rows:
        section_id = row[_SECTION_ID_AT]
        if section_id is not None and section_id not in sections:
            sections[section_id] = section(row)
        if row[_LESSON_ID_AT] is not None:
            lessons.append(lesson(row))
    return course(rows[0]), list(sections.values()), lessons


async def get_course(db: Db, *, producer_id: str, course_id: str, lock: bool = False) -> Course | None:
    """A course of `producer_id`; with `lock`, held (FOR UPDATE where the engine has it) until commit."""
    session = db.session
    statement = select(Course).where(col(Course.id) == course_id, col(Course.producer_id) == producer_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def slug_taken(db: Db, *, slug: str, except_course_id: str | None = None) -> bool:
    """Whether any course on the platform, other than `except_course_id`, has `slug`."""
    session = db.session
    statement = select(col(Course.id)).where(col(Course.slug) == slug)
    if except_course_id is not None:
        statement = statement.where(col(Course.id) != except_course_id)
    return (await session.scalars(statement.limit(1))).first() is not None


def courses_query(*, producer_id: str, search: str | None = None, published: bool | None = None) -> Select:
    """A producer's courses, newest first; optionally by title substring or exact slug, and by
    published state."""
    statement = select(Course).where(col(Course.producer_id) == producer_id)
    if search:
        statement = statement.where(
            or_(contains_text(col(Course.title), search), col(Course.slug) == search.strip().lower())
        )
    if published is not None:
        statement = statement.where(col(Course.published) == published)
    return statement.order_by(col(Course.created_at).desc(), col(Course.id).desc())


async def count_course_contents(db: Db, *, course_id: str) -> tuple[int, int, int]:
    """How many sections, lessons and enrollments the course has, in one statement."""
    session = db.session
    statement = select(
        count_where(Section, col(Section.course_id) == course_id),
        count_where(Lesson, col(Lesson.course_id) == course_id),
        count_where(Enrollment, col(Enrollment.course_id) == course_id),
    )
    sections, lessons, enrollments = (await session.execute(statement)).one()
    return sections, lessons, enrollments


async def delete_course(db: Db, *, course_id: str) -> None:
    """Delete a course; the database cascades to its sections, lessons and whatever hangs off them."""
    session = db.session
    await session.execute(delete(Course).where(col(Course.id) == course_id))


async def get_section(db: Db, *, course_id: str, section_id: str) -> Section | None:
    session = db.session
    statement = select(Section).where(col(Section.id) == section_id, col(Section.course_id) == course_id)
    return (await session.scalars(statement)).first()


async def get_lesson(db: Db, *, section_id: str, lesson_id: str) -> Lesson | None:
    session = db.session
    statement = select(Lesson).where(col(Lesson.id) == lesson_id, col(Lesson.section_id) == section_id)
    return (await session.scalars(statement)).first()


async def sections_of_course(db: Db, *, course_id: str) -> Sequence[Section]:
    session = db.session
    statement = (
        select(Section)
        .where(col(Section.course_id) == course_id)
        .order_by(col(Section.order), col(Section.id))
    )
    return (await session.scalars(statement)).all()


async def lessons_of_course(db: Db, *, course_id: str) -> Sequence[Lesson]:
    """Every lesson of a course in one statement, each section's in order."""
    session = db.session
    statement = (
        select(Lesson).where(col(Lesson.course_id) == course_id).order_by(col(Lesson.order), col(Lesson.id))
    )
    return (await session.scalars(statement)).all()


async def lessons_of_section(db: Db, *, section_id: str) -> Sequence[Lesson]:
    session = db.session
    statement = (
        select(Lesson).where(col(Lesson.section_id) == section_id).order_by(col(Lesson.order), col(Lesson.id))
    )
    return (await session.scalars(statement)).all()


async def count_lessons(db: Db, *, course_id: str) -> int:
    session = db.session
    return (
        await session.execute(select(func.count()).where(col(Lesson.course_id) == course_id))
    ).scalar_one()


_PARENT_OF: dict[type[Section | Lesson], InstrumentedAttribute[str]] = {
    # On the class a column is its InstrumentedAttribute; SQLModel types it as a row's value.
    Section: cast("InstrumentedAttribute[str]", Section.course_id),
    Lesson: cast("InstrumentedAttribute[str]", Lesson.section_id),
}
"""What makes rows siblings, kept in `order`: a course's sections, a section's lessons."""


async def _count_siblings(db: Db, kind: type[Section | Lesson], parent_id: str) -> int:
    session = db.session
    statement = select(func.count()).where(_PARENT_OF[kind] == parent_id)
    return (await session.execute(statement)).scalar_one()


async def _shift(
    db: Db, kind: type[Section | Lesson], parent_id: str, where: ColumnElement[bool], by: int
) -> None:
    session = db.session
    statement = update(kind).where(_PARENT_OF[kind] == parent_id, where).values(order=col(kind.order) + by)
    await session.execute(statement)


async def insert_position(
    db: Db, *, kind: type[Section | Lesson], parent_id: str, position: int | None
) -> int:
    """Make room for a new `kind` (a section of course `parent_id`, a lesson of section
    `parent_id`) at `position` (None or past the end: last) and return its position."""
    size = await _count_siblings(db, kind, parent_id)
    if position is None or position >= size:
        return size
    await _shift(db, kind, parent_id, col(kind.order) >= position, +1)
    return position


async def move_to(db: Db, *, item: Section | Lesson, position: int) -> None:
    """Move `item` to `position` (clamped to the last place) among its siblings."""
    kind = type(item)
    parent_id = getattr(item, _PARENT_OF[kind].key)
    order = col(kind.order)
    old = item.order
    new = min(position, await _count_siblings(db, kind, parent_id) - 1)
    if new < old:
        await _shift(db, kind, parent_id, (order >= new) & (order < old), +1)
    elif new > old:
        await _shift(db, kind, parent_id, (order > old) & (order <= new), -1)
    item.order = new


async def delete_in_order(db: Db, *, item: Section | Lesson) -> None:
    """Delete `item` (the database cascades to what hangs off it) and move its later siblings up by one."""
    session = db.session
    kind = type(item)
    await session.delete(item)
    await session.flush()
    parent_id = getattr(item, _PARENT_OF[kind].key)
    await _shift(db, kind, parent_id, col(kind.order) > item.order, -1)


# ---- writes


async def add_course(db: Db, *, producer_id: str, published: bool, at: datetime, **columns: Any) -> Course:
    """Insert a course of `producer_id` with `columns` (title, slug, ...), published at `at` if
    `published`; a slug another course took meanwhile raises `ConstraintViolation`."""
    course = Course(
        id=new_id("course"),
        producer_id=producer_id,
        **columns,
        published=published,
        published_at=at if published else None,
        created_at=at,
        updated_at=at,
    )
    await add_row(db, row=course)
    return course


LessonContent = Mapping[str, Any]
"""A new lesson's own columns: title, description, duration, is_preview and the video's."""


@dataclass(frozen=True)
class NewSection:
    """A section of a new course, with its lessons' content in order."""

    title: str
    lessons: Sequence[LessonContent]


def _section(*, course_id: str, title: str, order: int, at: datetime) -> Section:
    return Section(
        id=new_id("section"), course_id=course_id, title=title, order=order, created_at=at, updated_at=at
    )


def _lesson(*, course_id: str, section_id: str, order: int, content: LessonContent, at: datetime) -> Lesson:
    return Lesson(
        id=new_id("lesson"),
        section_id=section_id,
        course_id=course_id,
        order=order,
        created_at=at,
        updated_at=at,
        **content,
    )


async def add_curriculum(
    db: Db, *, course_id: str, sections: Sequence[NewSection], at: datetime
) -> tuple[list[Section], list[Lesson]]:
    """Insert a new course's sections and their lessons, each in the order given."""
    session = db.session
    section_rows: list[Section] = []
    lesson_rows: list[Lesson] = []
    for order, given in enumerate(sections):
        section = _section(course_id=course_id, title=given.title, order=order, at=at)
        section_rows.append(section)
        lesson_rows += [
            _lesson(course_id=course_id, section_id=section.id, order=position, content=content, at=at)
            for position, content in enumerate(given.lessons)
        ]
    # Without ORM relationships the unit of work does not order inserts by foreign key: parents first.
    session.add_all(section_rows)
    await session.flush()
    session.add_all(lesson_rows)
    await session.flush()
    return section_rows, lesson_rows


async def add_section(db: Db, *, course_id: str, title: str, position: int | None, at: datetime) -> Section:
    """Insert a section of the course at `position` (None or past the end: last); later ones shift down."""
    order = await insert_position(db, kind=Section, parent_id=course_id, position=position)
    section = _section(course_id=course_id, title=title, order=order, at=at)
    await add_row(db, row=section)
    return section


async def add_lesson(
    db: Db,
    *,
    course_id: str,
    section_id: str,
    position: int | None,
    content: LessonContent,
    at: datetime,
) -> Lesson:
    """Insert a lesson of the section at `position` (None or past the end: last); later ones shift down."""
    order = await insert_position(db, kind=Lesson, parent_id=section_id, position=position)
    lesson = _lesson(course_id=course_id, section_id=section_id, order=order, content=content, at=at)
    await add_row(db, row=lesson)
    return lesson


async def update_course(db: Db, *, course: Course, changes: Mapping[str, Any], at: datetime) -> None:
    """Write `changes` to `course` (`updated_at` becomes `at` if there are any); a slug another
    course took meanwhile raises `ConstraintViolation`."""
    await update_row(db, row=course, changes=changes, at=at)


async def update_in_order(
    db: Db, *, item: Section | Lesson, changes: Mapping[str, Any], at: datetime
) -> None:
    """Write `changes` to a section or lesson; a new `order` moves it among its siblings (clamped
    to the last place), which renumber."""
    if "order" in changes:
        await move_to(db, item=item, position=changes["order"])
        changes = {**changes, "order": item.order}  # where it went
    await update_row(db, row=item, changes=changes, at=at)
