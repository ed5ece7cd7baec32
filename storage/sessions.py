"""Producer sessions in the store. Functions return None for "not found"."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.tables import ProducerSession

__all__ = ["delete_finished_sessions", "end_session", "get_session_by_hash"]


async def get_session_by_hash(session: AsyncSession, *, token_hash: str) -> ProducerSession | None:
    statement = select(ProducerSession).where(ProducerSession.token_hash == token_hash)
    return (await session.scalars(statement)).first()


async def end_session(session: AsyncSession, *, session_id: str, at: datetime) -> None:
    statement = (
        update(ProducerSession)
        .where(ProducerSession.id == session_id, ProducerSession.ended_at.is_(None))
        .values(ended_at=at)
    )
    await session.execute(statement)


async def delete_finished_sessions(session: AsyncSession, *, user_id: str, now: datetime) -> None:
    """Forget `user_id`'s ended and expired sessions: they can never be used again."""
    finished = or_(ProducerSession.ended_at.is_not(None), ProducerSession.expires_at <= now)
    await session.execute(delete(ProducerSession).where(ProducerSession.user_id == user_id, finished))
