"""Changing a producer owner's password in the store: the new hash, and the end of its other sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlmodel import col

from storage.db import Db
from storage.tables import SignIn, User

__all__ = ["end_other_sessions", "set_password_hash"]


async def set_password_hash(
    db: Db, *, producer_id: str, user_id: str, password_hash: str, at: datetime
) -> bool:
    """Store `user_id`'s new password hash; False when no such user of `producer_id` exists."""
    session = db.session
    statement = (
        update(User)
        .where(col(User.id) == user_id, col(User.producer_id) == producer_id)
        .values(password_hash=password_hash, updated_at=at)
    )
    updated = cast("CursorResult[Any]", await session.execute(statement))  # an UPDATE: a CursorResult
    return updated.rowcount == 1


async def end_other_sessions(db: Db, *, user_id: str, keep_session_id: str | None, at: datetime) -> int:
    """End every live session of `user_id` but `keep_session_id`; how many ended."""
    session = db.session
    statement = update(SignIn).where(col(SignIn.user_id) == user_id, col(SignIn.ended_at).is_(None))
    if keep_session_id is not None:
        statement = statement.where(col(SignIn.id) != keep_session_id)
    ended = cast("CursorResult[Any]", await session.execute(statement.values(ended_at=at)))  # an UPDATE
    return ended.rowcount
