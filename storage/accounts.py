"""Producers, users and API keys in the store. Functions return None for "not found"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlmodel import col

from storage.credentials import raise_revision
from storage.db import Db
from storage.queries import add_row
from storage.statements import PreparedQuery
from storage.tables import ApiKey, Producer, User

__all__ = [
    "add_api_key",
    "add_producer",
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
    "revoke_api_key",
    "touch_api_key",
]


async def get_producer(db: Db, *, producer_id: str) -> Producer | None:
    session = db.session
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


async def producer_with_owner(db: Db, *, producer_id: str) -> dict[str, Any] | None:
    """The producer's `name` and its owner's user id (`owner_user_id`), in one statement."""
    return await db.first(_PRODUCER_WITH_OWNER, producer_id=producer_id)


def owners_by_producer_query() -> Select:
    """Every producer's owner, in the order the producers were made (the operator's list of producers)."""
    return select(User).where(col(User.role) == "owner").order_by(col(User.created_at), col(User.id))


async def producers_by_id(db: Db, *, producer_ids: list[str]) -> dict[str, Producer]:
    """The producers of `producer_ids`, in one statement."""
    session = db.session
    if not producer_ids:
        return {}
    found = await session.scalars(select(Producer).where(col(Producer.id).in_(producer_ids)))
    return {producer.id: producer for producer in found}


async def get_user(db: Db, *, producer_id: str, user_id: str, role: str | None = None) -> User | None:
    """A user of `producer_id` (optionally of one role); another producer's user is None."""
    session = db.session
    statement = select(User).where(col(User.id) == user_id, col(User.producer_id) == producer_id)
    if role is not None:
        statement = statement.where(col(User.role) == role)
    return (await session.scalars(statement)).first()


async def get_owner(db: Db, *, producer_id: str) -> User | None:
    session = db.session
    statement = (
        select(User)
        .where(col(User.producer_id) == producer_id, col(User.role) == "owner")
        .order_by(col(User.created_at))
    )
    return (await session.scalars(statement)).first()


async def get_owner_by_email(db: Db, *, email_normalized: str) -> User | None:
    """The producer owner who logs in with this email (owner emails are unique among owners,
    platform-wide: `uq_users_owner_email`)."""
    session = db.session
    statement = select(User).where(col(User.email_normalized) == email_normalized, col(User.role) == "owner")
    return (await session.scalars(statement)).first()


async def get_user_by_email(db: Db, *, producer_id: str, email_normalized: str) -> User | None:
    """The user of `producer_id` with this email (unique per producer; any role)."""
    session = db.session
    statement = select(User).where(
        col(User.email_normalized) == email_normalized, col(User.producer_id) == producer_id
    )
    return (await session.scalars(statement)).first()


async def get_api_key_by_id(db: Db, *, key_id: str) -> ApiKey | None:
    """Any producer's key: for the machine's operator only."""
    session = db.session
    return await session.get(ApiKey, key_id)


async def get_api_key(db: Db, *, producer_id: str, key_id: str) -> ApiKey | None:
    session = db.session
    statement = select(ApiKey).where(col(ApiKey.id) == key_id, col(ApiKey.producer_id) == producer_id)
    return (await session.scalars(statement)).first()


def api_keys_query(*, producer_id: str) -> Select:
    """A producer's API keys, newest first (revoked and expired ones included)."""
    return (
        select(ApiKey)
        .where(col(ApiKey.producer_id) == producer_id)
        .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc())
    )


async def touch_api_key(db: Db, *, key_id: str, at: datetime) -> None:
    session = db.session
    await session.execute(update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=at))


async def add_producer(
    db: Db,
    *,
    producer_id: str,
    owner_id: str,
    name: str,
    email: str,
    email_normalized: str,
    password_hash: str,
    at: datetime,
) -> tuple[Producer, User]:
    """Store a producer and its owner (named `name` too). Raises `ConstraintViolation` naming
    `uq_users_owner_email` when another owner has the email."""
    producer = Producer(id=producer_id, name=name, created_at=at)
    owner = User(
        id=owner_id,
        producer_id=producer_id,
        name=name,
        email=email,
        email_normalized=email_normalized,
        password_hash=password_hash,
        role="owner",
        created_at=at,
        updated_at=at,
    )
    await add_row(db, row=producer)
    await add_row(db, row=owner)
    return producer, owner


async def add_api_key(
    db: Db,
    *,
    key_id: str,
    producer_id: str,
    name: str,
    description: str | None,
    key_hash: str,
    prefix: str,
    permissions: list[str],
    created_at: datetime,
    expires_at: datetime | None,
    identities: str = "full",
) -> ApiKey:
    api_key = ApiKey(
        id=key_id,
        producer_id=producer_id,
        name=name,
        description=description,
        key_hash=key_hash,
        prefix=prefix,
        permissions=permissions,
        created_at=created_at,
        expires_at=expires_at,
        identities=identities,
    )
    await add_row(db, row=api_key)
    return api_key


async def revoke_api_key(db: Db, *, producer_id: str, key_id: str, at: datetime) -> ApiKey | None:
    """Revoke `producer_id`'s key `key_id` at `at`, unless it was revoked before (the first time
    stays), and return it; None when the producer has no such key."""
    session = db.session
    api_key = await get_api_key(db, producer_id=producer_id, key_id=key_id)
    if api_key is None:
        return None
    if api_key.revoked_at is None:
        api_key.revoked_at = at
        await raise_revision(db)  # every process's kept copy of the key is stale now
        await session.flush()
    return api_key
