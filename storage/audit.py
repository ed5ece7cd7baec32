"""The audit log in the store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import direct
from storage.fast import Query
from storage.ids import new_id
from storage.tables import AuditEvent

__all__ = ["audit_events_query", "insert_audit_event"]

_INSERT = Query(AuditEvent.__table__.insert())


async def insert_audit_event(
    session: AsyncSession, *, producer_id: str, occurred_at: datetime, key_id: str | None, key_name: str | None,
    operation: str, target_ids: dict[str, str], outcome: str,
) -> None:
    """One audit record, in the session's transaction: a plain insert (no model to track), after
    the session's pending rows (the producer a record names may be one of them)."""
    await direct.run(session, _INSERT,
        id=new_id("evt"), producer_id=producer_id, occurred_at=occurred_at, key_id=key_id, key_name=key_name,
        operation=operation, target_ids=target_ids, outcome=outcome,
    )  # fmt: skip


def audit_events_query(
    *,
    producer_id: str,
    operation: str | None = None,
    key_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: str | None = None,
) -> Select:
    """A producer's audit events, newest first, filtered."""
    statement = select(AuditEvent).where(AuditEvent.producer_id == producer_id)
    if operation is not None:
        statement = statement.where(AuditEvent.operation == operation)
    if key_id is not None:
        statement = statement.where(AuditEvent.key_id == key_id)
    if outcome is not None:
        statement = statement.where(AuditEvent.outcome == outcome)
    if since is not None:
        statement = statement.where(AuditEvent.occurred_at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.occurred_at < until)
    return statement.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
