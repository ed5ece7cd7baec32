"""Changing a producer owner's password in the store: the new hash, and the end of its other sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.tables import SignIn, User

__all__ = ["end_other_sessions", "set_password_hash"]


async def set_password_hash(
    session: AsyncSession, *, producer_id: str, user_id: str, password_hash: str, at: datetime
) -> bool:
    """Store `user_id`'s new password hash; False when no such user of `producer_id` exists."""
    statement = (
        update(User)
        .where(User.id == user_id, User.producer_id == producer_id)
        .values(password_hash=password_hash, updated_at=at)
    )
    return (await session.execute(statement)).rowcount == 1


async def end_other_sessions(
    session: AsyncSession, *, user_id: str, keep_session_id: str | None, at: datetime
) -> int:
    """End every live session of `user_id` but `keep_session_id`; how many ended."""
    statement = update(SignIn).where(SignIn.user_id == user_id, SignIn.ended_at.is_(None))
    if keep_session_id is not None:
        statement = statement.where(SignIn.id != keep_session_id)
    return (await session.execute(statement.values(ended_at=at))).rowcount
