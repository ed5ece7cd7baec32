"""The event feed: `list_events` (`events:read`), every change in order, from a cursor.

Recording events is the runner's (`tools.core.events`). The cursor is opaque to callers: it
carries the last sequence number the caller has seen, so paging from it returns each event once,
in order, while writes go on (sequences commit in order).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from pydantic import AfterValidator, Field, field_validator

from storage.events import events_after
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.events import EVENT_TYPES
from tools.core.fields import Id, RestSchema
from tools.core.models import InputModel, OutputModel, UtcDatetime
from tools.core.permissions import Permission

__all__ = ["EventTypes", "decode_cursor", "encode_cursor", "list_events"]

_CURSOR_PREFIX = "seq:"


def known_event_types(value: list[str]) -> list[str]:
    # Checked here rather than as a schema enum: 25 names would cost every agent's context.
    unknown = [name for name in value if name not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types {', '.join(unknown)}; use some of: {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(value))


EventTypes = Annotated[
    list[Annotated[str, Field(max_length=40), RestSchema(enum=list(EVENT_TYPES))]],
    Field(max_length=len(EVENT_TYPES)),
    AfterValidator(known_event_types),
]
"""Event type names, each one of `EVENT_TYPES`, no repeats."""

def encode_cursor(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{sequence}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor this feed returned") from None
    if not text.startswith(_CURSOR_PREFIX) or not text[len(_CURSOR_PREFIX):].isdigit():
        raise ValueError("not a cursor this feed returned")
    return int(text[len(_CURSOR_PREFIX):])


class EventPublic(OutputModel):
    id: str
    type: str
    sequence: int
    occurred_at: UtcDatetime
    key_id: str | None = Field(description="The API key or connected app that made the change.")
    data: dict


class EventPage(OutputModel):
    data: list[EventPublic]
    cursor: str = Field(description="Pass it back to get the events after these.")
    has_more: bool


class ListEventsInput(InputModel):
    cursor: str | None = Field(default=None, max_length=100, description="From a previous answer; omitted: from the oldest kept.")
    types: EventTypes | None = None
    course_id: Id | None = None
    community_id: Id | None = None
    student_id: Id | None = None
    limit: int = Field(default=50, ge=1, le=100)

    @field_validator("cursor")
    @classmethod
    def _known_cursor(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)
        return value


@operation(
    title="List events",
    permission=Permission.EVENTS_READ,
    http=("GET", "/events"),
    input_rules=('cursor is one that an earlier answer of this feed gave.',),
    kind="read",
)
async def list_events(ctx: OperationContext, data: ListEventsInput) -> EventPage:
    """What changed, in order, with the resource as data. Pass the returned cursor back for newer events."""
    after = decode_cursor(data.cursor) if data.cursor else 0
    rows = await events_after(
        ctx.session, producer_id=ctx.producer_id, after=after, limit=data.limit + 1, types=data.types,
        course_id=data.course_id, community_id=data.community_id, student_id=data.student_id,
    )
    page = rows[: data.limit]
    return EventPage(
        data=[EventPublic.model_validate(row, from_attributes=True) for row in page],
        cursor=encode_cursor(page[-1].sequence if page else after),  # nothing new: the same cursor again
        has_more=len(rows) > data.limit,
    )
