"""Webhook endpoints and deliveries in the store: a producer's endpoints and delivery logs, and the
deliveries as the delivery worker (`server.webhooks`) takes them: which are due, leasing them to
one worker, and locking one to record its attempt."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from storage.tables import Event, WebhookDelivery, WebhookEndpoint

__all__ = [
    "any_due",
    "deliveries_query",
    "endpoints_query",
    "get_endpoint",
    "lease_due",
    "lock_for_recording",
]


async def get_endpoint(session: AsyncSession, *, producer_id: str, webhook_id: str) -> WebhookEndpoint | None:
    """A webhook endpoint of `producer_id`."""
    statement = select(WebhookEndpoint).where(
        col(WebhookEndpoint.id) == webhook_id, col(WebhookEndpoint.producer_id) == producer_id
    )
    return (await session.scalars(statement)).first()


def endpoints_query(*, producer_id: str) -> Select:
    """`producer_id`'s webhook endpoints, oldest first."""
    return (
        select(WebhookEndpoint)
        .where(col(WebhookEndpoint.producer_id) == producer_id)
        .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    )


def deliveries_query(*, endpoint_id: str) -> Select:
    """An endpoint's delivery log, newest first."""
    return (
        select(WebhookDelivery)
        .where(col(WebhookDelivery.endpoint_id) == endpoint_id)
        .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id))
    )


def _due(now: datetime) -> Select:
    """Deliveries to send now: pending, due, not leased, of an enabled endpoint, and the oldest
    pending one of their endpoint (an endpoint gets its events in sequence order)."""
    earlier = aliased(WebhookDelivery)
    waits_for_earlier = exists().where(
        col(earlier.endpoint_id) == WebhookDelivery.endpoint_id,
        col(earlier.state) == "pending",
        col(earlier.sequence) < WebhookDelivery.sequence,
    )
    return (
        select(col(WebhookDelivery.id))
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == WebhookDelivery.endpoint_id)
        .where(
            col(WebhookDelivery.state) == "pending",
            col(WebhookDelivery.next_attempt_at) <= now,
            or_(col(WebhookDelivery.lease_until).is_(None), col(WebhookDelivery.lease_until) <= now),
            col(WebhookEndpoint.enabled).is_(True),
            ~waits_for_earlier,
        )
        .order_by(col(WebhookDelivery.next_attempt_at))
    )


async def any_due(session: AsyncSession, *, now: datetime) -> bool:
    """Whether any delivery is due: a read, so an idle worker's poll takes no write turn."""
    return (await session.execute(_due(now).limit(1))).first() is not None


async def lease_due(
    session: AsyncSession, *, now: datetime, limit: int, lease_until: datetime
) -> Sequence[tuple[WebhookDelivery, WebhookEndpoint, Event]]:
    """Lease up to `limit` due deliveries until `lease_until`, with their endpoints and events.

    PostgreSQL skips rows another transaction has locked (`FOR UPDATE SKIP LOCKED`), so two workers
    never lease the same delivery; SQLite renders no FOR UPDATE, and its one writer (BEGIN IMMEDIATE)
    serializes leases instead."""
    due = _due(now).limit(limit).with_for_update(of=WebhookDelivery, skip_locked=True)
    ids = (await session.scalars(due)).all()
    if not ids:
        return []
    await session.execute(
        update(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids)).values(lease_until=lease_until)
    )
    rows = await session.execute(
        select(WebhookDelivery, WebhookEndpoint, Event)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == WebhookDelivery.endpoint_id)
        .join(Event, col(Event.id) == WebhookDelivery.event_id)
        .where(col(WebhookDelivery.id).in_(ids))
    )
    return [(delivery, endpoint, event) for delivery, endpoint, event in rows]


async def lock_for_recording(
    session: AsyncSession, *, endpoint_id: str, delivery_id: str
) -> tuple[WebhookEndpoint, WebhookDelivery] | None:
    """The endpoint and its delivery, locked to record an attempt; None when either was deleted.
    The endpoint first, then the delivery: the order a cascading delete takes them in."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if endpoint is None or delivery is None:
        return None
    return endpoint, delivery
