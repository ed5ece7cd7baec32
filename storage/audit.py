"""The audit log in the store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select

from storage.tables import AuditEvent

__all__ = ["audit_events_query"]


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
