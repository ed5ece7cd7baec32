"""Webhook endpoints and deliveries in the store: a producer's endpoints and delivery logs, and the
deliveries as the delivery worker (`server.webhooks`) takes them: which are due, leasing them to
one worker, and locking one to record its attempt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import col

from storage import events as events_storage
from storage.db import Db
from storage.queries import add_row
from storage.tables import Event, WebhookDelivery, WebhookEndpoint

__all__ = [
    "add_endpoint",
    "add_test_delivery",
    "any_due",
    "change_endpoint",
    "delete_endpoint",
    "deliveries_query",
    "endpoints_query",
    "get_endpoint",
    "lease_due",
    "lock_for_recording",
    "record_attempt",
    "set_endpoint_health",
]


async def get_endpoint(db: Db, *, producer_id: str, webhook_id: str) -> WebhookEndpoint | None:
    """A webhook endpoint of `producer_id`."""
    session = db.session
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


async def any_due(db: Db, *, now: datetime) -> bool:
    """Whether any delivery is due: a read, so an idle worker's poll takes no write turn."""
    session = db.session
    return (await session.execute(_due(now).limit(1))).first() is not None


async def lease_due(
    db: Db, *, now: datetime, limit: int, lease_until: datetime
) -> Sequence[tuple[WebhookDelivery, WebhookEndpoint, Event]]:
    """Lease up to `limit` due deliveries until `lease_until`, with their endpoints and events.

    PostgreSQL skips rows another transaction has locked (`FOR UPDATE SKIP LOCKED`), so two workers
    never lease the same delivery; SQLite renders no FOR UPDATE, and its one writer (BEGIN IMMEDIATE)
    serializes leases instead."""
    session = db.session
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
    db: Db, *, endpoint_id: str, delivery_id: str
) -> tuple[WebhookEndpoint, WebhookDelivery] | None:
    """The endpoint and its delivery, locked to record an attempt; None when either was deleted.
    The endpoint first, then the delivery: the order a cascading delete takes them in."""
    session = db.session
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if endpoint is None or delivery is None:
        return None
    return endpoint, delivery


async def record_attempt(
    db: Db,
    *,
    delivery_id: str,
    attempted_at: datetime,
    state: str,
    next_attempt_at: datetime | None,
    response_status: int | None,
    response_excerpt: str | None,
    latency_ms: int | None,
    error: str | None,
) -> None:
    """Count one attempt of the delivery `lock_for_recording` locked in this transaction: its
    lease ends, its answer is kept, and it is `state` now, due again at `next_attempt_at` if given."""
    session = db.session
    delivery = await session.get(WebhookDelivery, delivery_id)  # the locked row, from the session
    assert delivery is not None, "record_attempt follows lock_for_recording in the same transaction"
    delivery.attempts += 1
    delivery.lease_until = None
    delivery.last_attempt_at = attempted_at
    delivery.response_status, delivery.response_excerpt = response_status, response_excerpt
    delivery.latency_ms, delivery.error = latency_ms, error
    delivery.state = state
    if next_attempt_at is not None:
        delivery.next_attempt_at = next_attempt_at


async def set_endpoint_health(
    db: Db,
    *,
    endpoint_id: str,
    failing_since: datetime | None,
    disabled_reason: str | None = None,
    at: datetime,
) -> None:
    """Note since when the endpoint `lock_for_recording` locked has failed (None: it answers);
    with `disabled_reason`, disable it at `at`."""
    session = db.session
    endpoint = await session.get(WebhookEndpoint, endpoint_id)  # the locked row, from the session
    assert endpoint is not None, "set_endpoint_health follows lock_for_recording in the same transaction"
    endpoint.failing_since = failing_since
    if disabled_reason is not None:
        endpoint.enabled, endpoint.disabled_reason, endpoint.updated_at = False, disabled_reason, at


async def add_endpoint(
    db: Db,
    *,
    endpoint_id: str,
    producer_id: str,
    url: str,
    description: str | None,
    event_types: list[str],
    secret: str,
    at: datetime,
    identities: str = "full",
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        producer_id=producer_id,
        url=url,
        description=description,
        event_types=event_types,
        secret=secret,
        created_at=at,
        updated_at=at,
        identities=identities,
    )
    await add_row(db, row=endpoint)
    return endpoint


async def _loaded_endpoint(db: Db, endpoint_id: str) -> WebhookEndpoint:
    """The endpoint this transaction read already (from the session: no statement)."""
    session = db.session
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None, "the endpoint was read in this transaction before it is changed"
    return endpoint


async def change_endpoint(
    db: Db, *, endpoint_id: str, changes: Mapping[str, Any], at: datetime
) -> WebhookEndpoint:
    """Set `changes` (column names and values) on the endpoint read in this transaction; if there
    are any, its `updated_at` becomes `at`."""
    session = db.session
    endpoint = await _loaded_endpoint(db, endpoint_id)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if changes:
        endpoint.updated_at = at
    await session.flush()
    return endpoint


async def delete_endpoint(db: Db, *, endpoint_id: str) -> None:
    """Delete the endpoint read in this transaction, and its deliveries with it."""
    session = db.session
    await session.delete(await _loaded_endpoint(db, endpoint_id))
    await session.flush()


async def add_test_delivery(
    db: Db,
    *,
    event_id: str,
    producer_id: str,
    event_sequence: int,
    event_type: str,
    data: dict[str, Any],
    key_id: str | None,
    key_name: str | None,
    delivery_id: str,
    endpoint_id: str,
    at: datetime,
) -> WebhookDelivery:
    """Store a test event (outside the feed: `event_sequence` is negative) and its one delivery,
    due at `at` and queued behind what the endpoint already has to receive (under the producer's
    latest sequence number)."""
    session = db.session
    event = Event(
        id=event_id,
        producer_id=producer_id,
        sequence=event_sequence,
        type=event_type,
        occurred_at=at,
        key_id=key_id,
        key_name=key_name,
        data=data,
    )
    session.add(event)
    latest = await events_storage.latest_sequence(db, producer_id=producer_id)
    delivery = WebhookDelivery(
        id=delivery_id,
        endpoint_id=endpoint_id,
        event_id=event_id,
        sequence=latest or 0,
        next_attempt_at=at,
        created_at=at,
    )
    await add_row(db, row=delivery)
    return delivery
