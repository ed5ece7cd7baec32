"""Events and their per-producer sequence in the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from storage.db import Db
from storage.ids import new_id
from storage.statements import PreparedQuery
from storage.tables import Event, EventCounter, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Allocation",
    "EnabledEndpoint",
    "allocate_sequences",
    "enabled_endpoints",
    "events_after",
    "insert_events",
    "latest_sequence",
    "new_delivery",
    "prune_deliveries",
    "prune_events",
]


_COUNTERS, _ENDPOINTS = EventCounter.__table__, WebhookEndpoint.__table__


def _allocate_statement(insert: Any) -> Any:
    # Whether the producer has an enabled webhook endpoint comes back with the counter, so that a
    # school without webhooks reads none: one statement less for every write with an event.
    any_endpoint = (
        select(_ENDPOINTS.c.id)
        .where(_ENDPOINTS.c.producer_id == bindparam("producer_id"), _ENDPOINTS.c.enabled.is_(True))
        .exists()
    )
    return (
        insert(_COUNTERS)
        .values(producer_id=bindparam("producer_id"), last_sequence=bindparam("count"))
        .on_conflict_do_update(
            index_elements=["producer_id"],
            set_={"last_sequence": _COUNTERS.c.last_sequence + bindparam("count")},
        )
        .returning(_COUNTERS.c.last_sequence, any_endpoint.label("any_endpoint"))
    )


# Built once per dialect, on the plain tables: building the upsert cost more than running it, and
# the mapped classes would send it through the ORM's bulk machinery.
_ALLOCATE = {
    "postgresql": PreparedQuery(_allocate_statement(postgresql_insert)),
    "sqlite": PreparedQuery(_allocate_statement(sqlite_insert)),
}
_ENABLED_ENDPOINTS = PreparedQuery(
    select(_ENDPOINTS.c.id, _ENDPOINTS.c.event_types).where(
        _ENDPOINTS.c.producer_id == bindparam("producer_id"), _ENDPOINTS.c.enabled.is_(True)
    )
)
_PRUNE = PreparedQuery(
    delete(Event).where(
        col(Event.producer_id) == bindparam("producer_id"), col(Event.occurred_at) < bindparam("before")
    )
)
_INSERT_EVENT, _INSERT_DELIVERY = (
    PreparedQuery(Event.__table__.insert()),
    PreparedQuery(WebhookDelivery.__table__.insert()),
)


def new_delivery(*, endpoint_id: str, event_id: str, sequence: int, at: datetime) -> dict[str, Any]:
    """The columns of a webhook delivery of an event to an endpoint, due at `at`, for `insert_events`."""
    return WebhookDelivery(
        id=new_id("whd"),
        endpoint_id=endpoint_id,
        event_id=event_id,
        sequence=sequence,
        next_attempt_at=at,
        created_at=at,
    ).model_dump()


async def insert_events(db: Db, events: list[dict[str, Any]], deliveries: list[dict[str, Any]]) -> None:
    """Insert events and their webhook deliveries (column values), after the session's pending
    rows: plain inserts, one statement for each table that gets rows."""
    await db.run_each(_INSERT_EVENT, events)
    await db.run_each(_INSERT_DELIVERY, deliveries)


@dataclass(frozen=True)
class Allocation:
    last: int
    """The last of the sequence numbers reserved."""
    any_endpoint: bool
    """Whether the producer has an enabled webhook endpoint (`enabled_endpoints` then says which)."""


async def allocate_sequences(db: Db, *, producer_id: str, count: int) -> Allocation:
    """Reserve `count` sequence numbers for `producer_id`. The counter row stays locked
    (PostgreSQL: the upsert's row lock; SQLite: the one writer) until the transaction ends, so
    another transaction's events get later numbers and commit after these."""
    counter = await db.first(_ALLOCATE[db.dialect.name], producer_id=producer_id, count=count)
    assert counter is not None, "the upsert returns the counter row it inserted or updated"
    return Allocation(last=counter["last_sequence"], any_endpoint=bool(counter["any_endpoint"]))


async def events_after(
    db: Db,
    *,
    producer_id: str,
    after: int,
    limit: int,
    types: Sequence[str] | None = None,
    course_id: str | None = None,
    community_id: str | None = None,
    student_id: str | None = None,
) -> Sequence[Event]:
    """Up to `limit` of `producer_id`'s events with a sequence above `after`, oldest first, filtered."""
    session = db.session
    statement = select(Event).where(col(Event.producer_id) == producer_id, col(Event.sequence) > after)
    if types:
        statement = statement.where(col(Event.type).in_(types))
    for column, value in (
        (col(Event.course_id), course_id),
        (col(Event.community_id), community_id),
        (col(Event.student_id), student_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    return (await session.scalars(statement.order_by(col(Event.sequence)).limit(limit))).all()


async def latest_sequence(db: Db, *, producer_id: str) -> int | None:
    """The last sequence number given to `producer_id`'s events (None before its first event)."""
    session = db.session
    return await session.scalar(
        select(col(EventCounter.last_sequence)).where(col(EventCounter.producer_id) == producer_id)
    )


async def prune_events(db: Db, *, producer_id: str, before: datetime) -> None:
    """Forget `producer_id`'s events that happened before `before` (the retention period)."""
    await db.run(_PRUNE, producer_id=producer_id, before=before)


async def prune_deliveries(db: Db, *, producer_id: str, before: datetime) -> None:
    """Forget `producer_id`'s finished webhook deliveries (succeeded or failed) made before
    `before`; a pending one stays until it is sent or its event is pruned."""
    endpoints = select(col(WebhookEndpoint.id)).where(col(WebhookEndpoint.producer_id) == producer_id)
    await db.session.execute(
        delete(WebhookDelivery).where(
            col(WebhookDelivery.endpoint_id).in_(endpoints),
            col(WebhookDelivery.state) != "pending",
            col(WebhookDelivery.created_at) < before,
        )
    )


@dataclass(frozen=True)
class EnabledEndpoint:
    id: str
    event_types: list[str]
    """The event types it subscribes to; empty: every type."""


async def enabled_endpoints(db: Db, *, producer_id: str) -> list[EnabledEndpoint]:
    """`producer_id`'s enabled webhook endpoints: each gets a delivery of every event it
    subscribes to."""
    return [EnabledEndpoint(**row) for row in await db.rows(_ENABLED_ENDPOINTS, producer_id=producer_id)]
