"""Students (users with role `student`) in the store."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlmodel import col

from storage.fast import FastReader, PreparedQuery
from storage.queries import contains_text
from storage.search import name_index_applies
from storage.tables import LearningDay, User

__all__ = ["STUDENT_ROLE", "student_with_learning_days", "students_query"]

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
    reader: FastReader, *, producer_id: str, student_id: str
) -> tuple[dict[str, Any], list[date]] | None:
    """A student of `producer_id` (its public columns) and the UTC days it learned on, oldest
    first, in one statement; None if the producer has no such student."""
    rows = await reader.all(_STUDENT_WITH_DAYS, producer_id=producer_id, student_id=student_id)
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
