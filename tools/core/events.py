"""Events: what changed, recorded in the same transaction as the change (an outbox).

An operation declares the events its result announces (`@operation(events=("course.created",))`);
a handler whose change implies more (progress that completes a lesson, a course, a certificate)
emits them itself with `ctx.emit`. `run_operation` writes them just before its commit, under the
producer's next sequence numbers, so a rolled-back write leaves no event and a reader never sees
sequence n+1 before n: each producer's counter row is locked until the writing transaction ends.
Each event's webhook deliveries (one per enabled endpoint subscribed to its type) are written
with it, for the delivery worker (`server.webhooks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from storage import audit as audit_storage
from storage import events as events_storage
from storage.db import Db
from storage.ids import new_id

__all__ = ["EVENT_TYPES", "PendingEvent", "Retention", "declared_events", "pending_event", "write_events"]

EVENT_TYPES: tuple[str, ...] = (
    "student.registered",
    "student.updated",
    "student.erased",
    "course.created",
    "course.updated",
    "course.published",
    "course.unpublished",
    "course.deleted",
    "enrollment.created",
    "enrollment.deleted",
    "lesson.completed",
    "course.completed",
    "certificate.issued",
    "achievement.unlocked",
    "community.created",
    "community.updated",
    "community.deleted",
    "member.added",
    "member.removed",
    "thread.created",
    "thread.updated",
    "thread.deleted",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "media.added",
)

# The resources a feed can be filtered by, and where an event's data names them.
_SUBJECTS = {"course": "courseId", "community": "communityId", "student": "studentId"}


@dataclass(frozen=True)
class PendingEvent:
    """An event an operation announced, written with its sequence when the transaction commits."""

    type: str
    data: dict[str, Any]
    subjects: dict[str, str]


def pending_event(
    event_type: str, data: BaseModel | Mapping[str, Any], arguments: Mapping[str, Any] | None = None
) -> PendingEvent:
    """`data` (a resource as the API returns it) as the payload of an `event_type` event; the
    course, community and student it concerns come from the data, else from the arguments."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    payload = data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else dict(data)
    subjects: dict[str, str] = {}
    resource = event_type.split(".", 1)[0]
    for subject, field in _SUBJECTS.items():
        value = payload.get("id") if resource == subject else payload.get(field)
        if not isinstance(value, str) and arguments is not None:
            value = arguments.get(field)
        if isinstance(value, str):
            subjects[subject] = value
    return PendingEvent(type=event_type, data=payload, subjects=subjects)


def declared_events(
    event_types: tuple[str, ...], result: BaseModel, arguments: Mapping[str, Any]
) -> list[PendingEvent]:
    """The events an operation declares, each with its result's resource as the payload: the one
    model the result holds (`{"course": {...}}`), or the result itself (`{"deleted": true, "id": ...}`)."""
    resources = [value for _, value in result if isinstance(value, BaseModel)]
    data = resources[0] if len(resources) == 1 else result
    return [pending_event(event_type, data, arguments) for event_type in event_types]


_PRUNE_EVERY = 100
"""Events, finished deliveries and audit records past their retention periods go when a
producer's sequence crosses a multiple of this: one pruning per hundred events, not per write."""


@dataclass(frozen=True)
class Retention:
    """How long a producer's events, finished webhook deliveries and audit records are kept."""

    events: timedelta
    deliveries: timedelta
    audit: timedelta


async def write_events(
    db: Db,
    events: list[PendingEvent],
    *,
    producer_id: str,
    key_id: str | None,
    key_name: str | None,
    at: datetime,
    retention: Retention,
) -> int:
    """Write `events` under `producer_id`'s next sequence numbers, in this transaction; returns how
    many webhook deliveries were queued with them."""
    if not events:
        return 0
    allocation = await events_storage.allocate_sequences(db, producer_id=producer_id, count=len(events))
    last = allocation.last
    first = last - len(events) + 1
    if (first - 1) // _PRUNE_EVERY != last // _PRUNE_EVERY:
        await events_storage.prune_events(db, producer_id=producer_id, before=at - retention.events)
        await events_storage.prune_deliveries(db, producer_id=producer_id, before=at - retention.deliveries)
        await audit_storage.prune_audit_events(db, producer_id=producer_id, before=at - retention.audit)
    endpoints = (
        await events_storage.enabled_endpoints(db, producer_id=producer_id) if allocation.any_endpoint else []
    )
    rows, deliveries = [], []
    for offset, event in enumerate(events):
        event_id = new_id("evt")
        rows.append(
            {
                "id": event_id,
                "producer_id": producer_id,
                "sequence": first + offset,
                "type": event.type,
                "occurred_at": at,
                "key_id": key_id,
                "key_name": key_name,
                "course_id": event.subjects.get("course"),
                "community_id": event.subjects.get("community"),
                "student_id": event.subjects.get("student"),
                "data": event.data,
            }
        )
        # The webhook deliveries go in the same transaction: an event is never without them.
        deliveries += [
            events_storage.new_delivery(
                endpoint_id=endpoint.id, event_id=event_id, sequence=first + offset, at=at
            )
            for endpoint in endpoints
            if not endpoint.event_types or event.type in endpoint.event_types
        ]
    await events_storage.insert_events(db, rows, deliveries)
    return len(deliveries)
