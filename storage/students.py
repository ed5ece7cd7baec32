"""Students (users with role `student`) in the store."""

from __future__ import annotations

from sqlalchemy import Select, select

from storage.queries import contains_text
from storage.search import name_index_applies
from storage.tables import User

__all__ = ["STUDENT_ROLE", "students_query"]

STUDENT_ROLE = "student"


def students_query(*, producer_id: str, search: str | None = None) -> Select:
    """A producer's students, newest first, optionally those whose name contains `search`; a
    search with an `@` is an email, matched exactly (case-insensitively) on the unique email index."""
    if search and "@" in search:
        email = User.email_normalized == search.strip().lower()
        return select(User).where(User.producer_id == producer_id, User.role == STUDENT_ROLE, email).order_by(
            User.created_at.desc(), User.id.desc()
        )
    owner = User.producer_id == producer_id
    if search and name_index_applies(search):
        # The name index finds the few matching rows; without statistics SQLite would rather walk
        # every student of the producer on the (producer, role) index. `producer_id || ''` keeps
        # the condition but takes that index out of the planner's choice.
        owner = User.producer_id.op("||")("") == producer_id
    statement = select(User).where(owner, User.role == STUDENT_ROLE)
    if search:
        statement = statement.where(contains_text(User.name, search))
    return statement.order_by(User.created_at.desc(), User.id.desc())
