"""Owners' sign-ins in the store: the session a producer's owner starts with email and password,
known to the API as a session token. Functions return None for "not found"."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlmodel import col

from storage.db import Db
from storage.queries import add_row
from storage.tables import SignIn

__all__ = ["add_sign_in", "delete_finished_sign_ins", "end_sign_in", "get_sign_in_by_token_hash"]


async def get_sign_in_by_token_hash(db: Db, *, token_hash: str) -> SignIn | None:
    session = db.session
    statement = select(SignIn).where(col(SignIn.token_hash) == token_hash)
    return (await session.scalars(statement)).first()


async def end_sign_in(db: Db, *, sign_in_id: str, at: datetime) -> None:
    session = db.session
    statement = (
        update(SignIn).where(col(SignIn.id) == sign_in_id, col(SignIn.ended_at).is_(None)).values(ended_at=at)
    )
    await session.execute(statement)


async def delete_finished_sign_ins(db: Db, *, user_id: str, now: datetime) -> None:
    """Forget `user_id`'s ended and expired sign-ins: they can never be used again."""
    session = db.session
    finished = or_(col(SignIn.ended_at).is_not(None), col(SignIn.expires_at) <= now)
    await session.execute(delete(SignIn).where(col(SignIn.user_id) == user_id, finished))


async def add_sign_in(
    db: Db,
    *,
    sign_in_id: str,
    producer_id: str,
    user_id: str,
    token_hash: str,
    created_at: datetime,
    expires_at: datetime,
) -> SignIn:
    row = SignIn(
        id=sign_in_id,
        producer_id=producer_id,
        user_id=user_id,
        token_hash=token_hash,
        created_at=created_at,
        expires_at=expires_at,
    )
    await add_row(db, row=row)
    return row
