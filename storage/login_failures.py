"""Failed sign-ins in the store, for the login throttle (see `storage.tables.LoginFailure`); OAuth's
registration throttle counts client registrations with the same functions, under buckets of its own."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, or_, select, text
from sqlmodel import col

from storage.db import Db
from storage.ids import new_id
from storage.tables import LoginFailure

__all__ = ["clear_failures", "failure_times", "lock_buckets", "record_failure"]


async def lock_buckets(db: Db, *, buckets: Iterable[str]) -> None:
    """Hold `buckets` until the transaction ends, so concurrent sign-ins count one after another.

    SQLite needs nothing: a write transaction already holds the database's only write lock.
    On PostgreSQL, a transaction-scoped advisory lock per bucket (taken in one order: no deadlock).
    """
    if db.dialect.name != "postgresql":
        return
    session = db.session
    for bucket in sorted(buckets):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:bucket, 0))"), {"bucket": bucket}
        )


async def failure_times(db: Db, *, bucket: str, since: datetime) -> list[datetime]:
    """When `bucket`'s failures since `since` happened, oldest first."""
    session = db.session
    statement = (
        select(col(LoginFailure.failed_at))
        .where(col(LoginFailure.bucket) == bucket, col(LoginFailure.failed_at) >= since)
        .order_by(col(LoginFailure.failed_at))
    )
    return list((await session.scalars(statement)).all())


async def record_failure(
    db: Db, *, buckets: Iterable[str], at: datetime, forget_before: datetime
) -> list[str]:
    """Count one failure against each bucket (the new rows' ids), and forget their failures older
    than `forget_before`."""
    session = db.session
    buckets = list(buckets)
    await session.execute(
        delete(LoginFailure).where(
            col(LoginFailure.bucket).in_(buckets), col(LoginFailure.failed_at) < forget_before
        )
    )
    rows = [LoginFailure(id=new_id("lgf"), bucket=bucket, failed_at=at) for bucket in buckets]
    session.add_all(rows)
    return [row.id for row in rows]


async def clear_failures(db: Db, *, bucket: str, ids: Iterable[str] = ()) -> None:
    """Forget every failure of `bucket`, and the failures `ids` whatever their bucket."""
    session = db.session
    await session.execute(
        delete(LoginFailure).where(
            or_(col(LoginFailure.bucket) == bucket, col(LoginFailure.id).in_(list(ids)))
        )
    )
