"""The audit log: every write operation records who, what, when and the outcome.

Recorded by `tools.runner` for every operation that is not read-only: in the operation's own
transaction when it succeeds (so the event and the change commit together), in a transaction
of its own when it fails. Only ids are kept, never argument values: no secret, password or
content can reach the log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import audit_events_query
from storage.ids import new_id
from storage.queries import fetch_page
from storage.tables import AuditEvent
from tools.catalog import operation
from tools.context import OperationContext, Principal
from tools.fields import Id, IsoDatetime
from tools.models import OutputModel, Page, PageQuery, UtcDatetime, page_of

__all__ = ["list_audit_events", "record_audit_event", "target_ids"]

_MAX_ID_LENGTH = 100
_ID = re.compile(r"[A-Za-z0-9_-]+")
# Secrets have recognisable prefixes (API keys, producer sessions); an agent that pastes one into
# an id field must not get it written to the log.
_SECRET_PREFIXES = ("blk_", "bls_")


def _loggable_id(value: str) -> str:
    if value.startswith(_SECRET_PREFIXES) or len(value) > _MAX_ID_LENGTH or not _ID.fullmatch(value):
        return "[redacted]"
    return value


def _ids_in(arguments: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: _loggable_id(value)
        for name, value in arguments.items()
        if isinstance(name, str) and (name == "id" or name.endswith("Id")) and isinstance(value, str)
    }


def target_ids(arguments: Mapping[str, Any], result: BaseModel | None = None) -> dict[str, str]:
    """The ids an operation named or created: `courseId` from its arguments, and for a result such as
    `{"course": {"id": ...}}` the new `courseId` (`{"deleted": true, "id": ...}` gives `id`)."""
    ids = _ids_in(arguments) if isinstance(arguments, Mapping) else {}
    if result is None:
        return ids
    for name, field in type(result).model_fields.items():
        value = getattr(result, name)
        wire_name = field.alias or name
        if isinstance(value, BaseModel) and isinstance(getattr(value, "id", None), str):
            ids.setdefault(f"{wire_name}Id", value.id)
        elif wire_name == "id" and isinstance(value, str):
            ids.setdefault("id", value)
    return ids


def record_audit_event(
    session: AsyncSession, *, principal: Principal, operation_name: str, ids: dict[str, str], outcome: str, at: datetime
) -> None:
    session.add(
        AuditEvent(
            id=new_id("evt"),
            producer_id=principal.producer_id,
            occurred_at=at,
            key_id=principal.key_id,
            key_name=principal.key_name,
            operation=operation_name,
            target_ids=ids,
            outcome=outcome,
        )
    )


class AuditEventPublic(OutputModel):
    id: str
    occurred_at: UtcDatetime
    key_id: str | None
    key_name: str | None
    operation: str
    target_ids: dict[str, str]
    outcome: str = Field(description='"ok" or the error code.')


class ListAuditEventsInput(PageQuery):
    operation: str | None = Field(default=None, max_length=60, description="e.g. create_course.")
    key_id: Id | None = None
    since: IsoDatetime | None = Field(default=None, description="ISO 8601, inclusive.")
    until: IsoDatetime | None = Field(default=None, description="ISO 8601, exclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> ListAuditEventsInput:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


@operation(
    title="List audit events",
    permission="audit:read",
    http=("GET", "/audit-events"),
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_audit_events(ctx: OperationContext, data: ListAuditEventsInput) -> Page[AuditEventPublic]:
    """List this producer's audit log, newest first: each write's key, operation, target ids, time and
    outcome. Filter by operation, keyId, since/until. Paginated."""
    statement = audit_events_query(
        producer_id=ctx.producer_id, operation=data.operation, key_id=data.key_id, since=data.since, until=data.until
    )
    rows, total = await fetch_page(ctx.session, statement, offset=data.offset, limit=data.limit)
    events = [AuditEventPublic.model_validate(row, from_attributes=True) for row in rows]
    return Page[AuditEventPublic](**page_of(events, query=data, total=total))
