"""Producers, users and API keys in the store. Functions return None for "not found"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.fast import FastReader, PreparedQuery
from storage.tables import ApiKey, Producer, User

__all__ = [
    "api_keys_query",
    "get_api_key",
    "get_api_key_by_id",
    "get_owner",
    "get_owner_by_email",
    "get_producer",
    "get_user",
    "get_user_by_email",
    "owners_by_producer_query",
    "producer_with_owner",
    "producers_by_id",
    "touch_api_key",
]


async def get_producer(session: AsyncSession, *, producer_id: str) -> Producer | None:
    return await session.get(Producer, producer_id)


_PRODUCER_WITH_OWNER = PreparedQuery(
    select(
        col(Producer.name),
        select(col(User.id))
        .where(col(User.producer_id) == Producer.id, col(User.role) == "owner")
        .order_by(col(User.created_at))
        .limit(1)
        .scalar_subquery()
        .label("owner_user_id"),
    ).where(col(Producer.id) == bindparam("producer_id"))
)


async def producer_with_owner(reader: FastReader, *, producer_id: str) -> dict[str, Any] | None:
    """The producer's `name` and its owner's user id (`owner_user_id`), in one statement."""
    return await reader.one(_PRODUCER_WITH_OWNER, producer_id=producer_id)


def owners_by_producer_query() -> Select:
    """Every producer's owner, in the order the producers were made (the operator's list of producers)."""
    return select(User).where(col(User.role) == "owner").order_by(col(User.created_at), col(User.id))


async def producers_by_id(session: AsyncSession, *, producer_ids: list[str]) -> dict[str, Producer]:
    """The producers of `producer_ids`, in one statement."""
    if not producer_ids:
        return {}
    found = await session.scalars(select(Producer).where(col(Producer.id).in_(producer_ids)))
    return {producer.id: producer for producer in found}


async def get_user(
    session: AsyncSession, *, producer_id: str, user_id: str, role: str | None = None
) -> User | None:
    """A user of `producer_id` (optionally of one role); another producer's user is None."""
    statement = select(User).where(col(User.id) == user_id, col(User.producer_id) == producer_id)
    if role is not None:
        statement = statement.where(col(User.role) == role)
    return (await session.scalars(statement)).first()


async def get_owner(session: AsyncSession, *, producer_id: str) -> User | None:
    statement = (
        select(User)
        .where(col(User.producer_id) == producer_id, col(User.role) == "owner")
        .order_by(col(User.created_at))
    )
    return (await session.scalars(statement)).first()


async def get_owner_by_email(session: AsyncSession, *, email_normalized: str) -> User | None:
    """The producer owner who logs in with this email (owner emails are unique among owners,
    platform-wide: `uq_users_owner_email`)."""
    statement = select(User).where(col(User.email_normalized) == email_normalized, col(User.role) == "owner")
    return (await session.scalars(statement)).first()


async def get_user_by_email(session: AsyncSession, *, producer_id: str, email_normalized: str) -> User | None:
    """The user of `producer_id` with this email (unique per producer; any role)."""
    statement = select(User).where(
        col(User.email_normalized) == email_normalized, col(User.producer_id) == producer_id
    )
    return (await session.scalars(statement)).first()


async def get_api_key_by_id(session: AsyncSession, *, key_id: str) -> ApiKey | None:
    """Any producer's key: for the machine's operator only."""
    return await session.get(ApiKey, key_id)


async def get_api_key(session: AsyncSession, *, producer_id: str, key_id: str) -> ApiKey | None:
    statement = select(ApiKey).where(col(ApiKey.id) == key_id, col(ApiKey.producer_id) == producer_id)
    return (await session.scalars(statement)).first()


def api_keys_query(*, producer_id: str) -> Select:
    """A producer's API keys, newest first (revoked and expired ones included)."""
    return (
        select(ApiKey)
        .where(col(ApiKey.producer_id) == producer_id)
        .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc())
    )


async def touch_api_key(session: AsyncSession, *, key_id: str, at: datetime) -> None:
    await session.execute(update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=at))
