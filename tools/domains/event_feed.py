"""The event feed: `list_events` (`events:read`), every change in order, from a cursor.

Recording events is the runner's (`tools.core.events`). The cursor is opaque to callers: it
carries the last sequence number the caller has seen, so paging from it returns each event once,
in order, while writes go on (sequences commit in order).

A cursor is `seq:N` in unpadded base64url, N a whole number of at most `MAX_CURSOR_DIGITS` digits,
so it always fits the store's 64-bit sequence column. `CURSOR_PATTERN` states exactly that; the
validator matches it, and the OpenAPI document publishes it. Any cursor it admits is answered
normally: the events after N, none (and the same cursor back) when N is beyond the feed's end.
"""

from __future__ import annotations

import base64
import re
from typing import Annotated

from pydantic import AfterValidator, Field

from storage.events import events_after
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.events import EVENT_TYPES
from tools.core.fields import Id, RestSchema
from tools.core.models import InputModel, OutputModel, UtcDatetime
from tools.core.permissions import Permission

__all__ = [
    "CURSOR_PATTERN",
    "MAX_CURSOR_DIGITS",
    "EventTypes",
    "decode_cursor",
    "encode_cursor",
    "list_events",
]

_CURSOR_PREFIX = "seq:"
MAX_CURSOR_DIGITS = 18
"""The digits of a cursor's sequence number: 10**18 - 1 stays below a signed 64-bit column's
9223372036854775807, the bound of the store's sequences, with room no producer will ever use."""


def _cursor_pattern() -> str:
    """`seq:N` (N of 1 to `MAX_CURSOR_DIGITS` digits) as unpadded base64url, as a regex.

    Base64 turns each 3 bytes into 4 characters, so the text is written group by group: "seq" is
    `c2Vx`; ":" with the first two digits is `Oj` and two characters; then 3 digits at a time, and
    1 or 2 digits left over make 2 or 3 characters. An ASCII digit is 0x30-0x39 (0011xxxx, xxxx at
    most 1001), which limits each character to the classes below; only canonical text (the unused
    bits of the last character zero) is admitted, as `encode_cursor` writes it."""
    # A whole digit, then the next one's 0011: 0011 and the digit's high two bits (M, N; O for 8 and 9
    # only), then its low two bits and 0011.
    high = "(?:[MN][DTjz]|O[DT])"
    low = "[AEIMQUYcgk]"  # a digit's four bits (0-9), then 00, the next byte's first bits (or padding)
    last = "[w-z0-5]"  # a digit's 11 (of 0011) and its four bits (0-9)
    one_left, two_left, three = "(?:[MN][AQgw]|O[AQ])", high + low, high + low + last
    # After the first two digits, 16 more at most: 5 groups of 3 and 1 over, or 4 groups and 2 over.
    more = f"(?:(?:{three}){{0,5}}{one_left}?|(?:{three}){{0,4}}{two_left})"
    return f"^c2VxOj(?:{low}|{low}{last}{more})$"


CURSOR_PATTERN = _cursor_pattern()
"""What a cursor is: `seq:N`, N of 1 to `MAX_CURSOR_DIGITS` digits, in unpadded base64url."""
_CURSOR = re.compile(CURSOR_PATTERN)


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
    """The cursor of the events after `sequence` (0 or more)."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{sequence}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The sequence number `cursor` carries; ValueError unless it is one (`CURSOR_PATTERN`)."""
    if _CURSOR.fullmatch(cursor) is None:
        raise ValueError("not a cursor this feed returned")
    return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()[len(_CURSOR_PREFIX) :])


def _known_cursor(value: str) -> str:
    decode_cursor(value)
    return value


Cursor = Annotated[
    str, Field(max_length=100), AfterValidator(_known_cursor), RestSchema(pattern=CURSOR_PATTERN)
]
"""A feed cursor, checked whole before anything reads it: its number is never one the store cannot hold."""


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
    cursor: Cursor | None = Field(default=None, description="Omitted: from the oldest kept.")
    types: EventTypes | None = None
    course_id: Id | None = None
    community_id: Id | None = None
    student_id: Id | None = None
    limit: int = Field(default=50, ge=1, le=100)


@operation(
    title="List events",
    permission=Permission.EVENTS_READ,
    http=("GET", "/events"),
    kind="read",
)
async def list_events(ctx: OperationContext, data: ListEventsInput) -> EventPage:
    """What changed, in order, with the resource as data; pass cursor back for newer."""
    after = decode_cursor(data.cursor) if data.cursor else 0
    rows = await events_after(
        ctx.db,
        producer_id=ctx.producer_id,
        after=after,
        limit=data.limit + 1,
        types=data.types,
        course_id=data.course_id,
        community_id=data.community_id,
        student_id=data.student_id,
    )
    page = rows[: data.limit]
    return EventPage(
        data=[EventPublic.model_validate(row, from_attributes=True) for row in page],
        cursor=encode_cursor(page[-1].sequence if page else after),  # nothing new: the same cursor again
        has_more=len(rows) > data.limit,
    )
