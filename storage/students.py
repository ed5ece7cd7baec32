"""Students (users with role `student`) in the store."""

from __future__ import annotations

from sqlalchemy import Select, select

from storage.queries import contains_text
from storage.tables import User

__all__ = ["STUDENT_ROLE", "students_query"]

STUDENT_ROLE = "student"


def students_query(*, producer_id: str, search: str | None = None) -> Select:
    """A producer's students, newest first, optionally those whose name contains `search`."""
    statement = select(User).where(User.producer_id == producer_id, User.role == STUDENT_ROLE)
    if search:
        statement = statement.where(contains_text(User.name, search))
    return statement.order_by(User.created_at.desc(), User.id.desc())
