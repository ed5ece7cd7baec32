"""Retention: events, finished webhook deliveries and audit records past their periods are pruned
as a producer's event sequence crosses each hundred; idempotency records expire after their TTL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import col

from storage.ids import new_id, utcnow
from storage.tables import AuditEvent, Event, EventCounter, IdempotencyRecord, WebhookDelivery
from tests.support.community_factories import call
from tests.support.factories import add_webhook, mcp_client
from tools.core.context import Services


def _event(producer_id: str, sequence: int, age: timedelta) -> Event:
    return Event(
        id=new_id("evt"),
        producer_id=producer_id,
        sequence=sequence,
        type="course.created",
        occurred_at=utcnow() - age,
        data={"id": f"course_{sequence}"},
    )


def _delivery(endpoint_id: str, event: Event, *, state: str, age: timedelta) -> WebhookDelivery:
    at = utcnow() - age
    return WebhookDelivery(
        id=new_id("whd"),
        endpoint_id=endpoint_id,
        event_id=event.id,
        sequence=event.sequence,
        state=state,
        next_attempt_at=at,
        created_at=at,
    )


def _audit(producer_id: str, age: timedelta) -> AuditEvent:
    return AuditEvent(
        id=new_id("evt"),
        producer_id=producer_id,
        occurred_at=utcnow() - age,
        operation="create_course",
        target_ids={},
        outcome="ok",
    )


async def test_old_rows_go_and_young_ones_stay(store, tenant):
    endpoint = await add_webhook(store, tenant.producer_id)
    days = timedelta(days=1)
    old_event, young_event = _event(tenant.producer_id, 1, 40 * days), _event(tenant.producer_id, 2, 5 * days)
    rows = {
        "old event": old_event,
        "young event": young_event,
        "delivery of the old event": _delivery(endpoint, old_event, state="succeeded", age=40 * days),
        "old finished delivery": _delivery(endpoint, young_event, state="failed", age=5 * days),
        "old pending delivery": _delivery(endpoint, young_event, state="pending", age=5 * days),
        "old audit": _audit(tenant.producer_id, 400 * days),
        "young audit": _audit(tenant.producer_id, 300 * days),
    }
    async with store.writing() as db:
        for row in rows.values():
            db.session.add(row)
            await db.session.flush()
        # The next event is number 100: its write prunes.
        db.session.add(EventCounter(producer_id=tenant.producer_id, last_sequence=99))
    services = Services(event_retention=30 * days, delivery_retention=3 * days, audit_retention=365 * days)
    async with mcp_client(store, tenant.key, services=services) as client:
        await call(client, "register_student", name="Pruner", email="pruner@example.com")
    kept = set()
    async with store.sessions() as session:
        for name, row in rows.items():
            if await session.get(type(row), row.id) is not None:
                kept.add(name)
    assert kept == {"young event", "old pending delivery", "young audit"}


async def test_idempotency_records_expire_after_the_configured_hours(store, tenant):
    services = Services(idempotency_ttl=timedelta(hours=2))
    async with mcp_client(store, tenant.key, services=services) as client:
        await call(client, "register_student", name="Kept", email="kept@example.com", idempotencyKey="k1")
    async with store.sessions() as session:
        record = (
            await session.scalars(select(IdempotencyRecord).where(col(IdempotencyRecord.key) == "k1"))
        ).one()
    assert record.expires_at - record.created_at == timedelta(hours=2)
