"""Students (users with role `student`) in the store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlmodel import col

from storage.db import Db
from storage.ids import new_id
from storage.queries import add_row, contains_text, update_row
from storage.search import name_index_applies
from storage.statements import PreparedQuery
from storage.tables import LearningDay, User

__all__ = ["STUDENT_ROLE", "add_student", "student_with_learning_days", "students_query", "update_student"]

STUDENT_ROLE = "student"

_STUDENT_WITH_DAYS = PreparedQuery(
    select(
        col(User.id),
        col(User.name),
        col(User.email),
        col(User.avatar_url),
        col(User.bio),
        col(User.role),
        col(User.created_at),
        col(User.updated_at),
        col(LearningDay.day),
    )
    .outerjoin(LearningDay, col(LearningDay.student_id) == User.id)
    .where(
        col(User.id) == bindparam("student_id"),
        col(User.producer_id) == bindparam("producer_id"),
        col(User.role) == STUDENT_ROLE,
    )
    .order_by(col(LearningDay.day))
)


async def student_with_learning_days(
    db: Db, *, producer_id: str, student_id: str
) -> tuple[dict[str, Any], list[date]] | None:
    """A student of `producer_id` (its public columns) and the UTC days it learned on, oldest
    first, in one statement; None if the producer has no such student."""
    rows = await db.rows(_STUDENT_WITH_DAYS, producer_id=producer_id, student_id=student_id)
    if not rows:
        return None
    days = [row.pop("day") for row in rows]
    return rows[0], [day for day in days if day is not None]


def students_query(*, producer_id: str, search: str | None = None) -> Select:
    """A producer's students, newest first, optionally those whose name contains `search`; a
    search with an `@` is an email, matched exactly (case-insensitively) on the unique email index."""
    if search and "@" in search:
        email = col(User.email_normalized) == search.strip().lower()
        return (
            select(User)
            .where(col(User.producer_id) == producer_id, col(User.role) == STUDENT_ROLE, email)
            .order_by(col(User.created_at).desc(), col(User.id).desc())
        )
    owner = col(User.producer_id) == producer_id
    if search and name_index_applies(search):
        # The name index finds the few matching rows; without statistics SQLite would rather walk
        # every student of the producer on the (producer, role) index. `producer_id || ''` keeps
        # the condition but takes that index out of the planner's choice.
        owner = col(User.producer_id).op("||")("") == producer_id
    statement = select(User).where(owner, col(User.role) == STUDENT_ROLE)
    if search:
        statement = statement.where(contains_text(col(User.name), search))
    return statement.order_by(col(User.created_at).desc(), col(User.id).desc())


async def add_student(
    db: Db,
    *,
    producer_id: str,
    name: str,
    email: str,
    email_normalized: str,
    password_hash: str,
    avatar_url: str | None,
    bio: str | None,
    at: datetime,
) -> User:
    """Insert a student of `producer_id`; an email registered meanwhile raises `ConstraintViolation`."""
    user = User(
        id=new_id("user"),
        producer_id=producer_id,
        name=name,
        email=email,
        email_normalized=email_normalized,
        password_hash=password_hash,
        avatar_url=avatar_url,
        bio=bio,
        role=STUDENT_ROLE,
        created_at=at,
        updated_at=at,
    )
    await add_row(db, row=user)
    return user


async def update_student(db: Db, *, student: User, changes: Mapping[str, Any], at: datetime) -> None:
    """Write `changes` to `student` (`updated_at` becomes `at` if there are any)."""
    await update_row(db, row=student, changes=changes, at=at)
