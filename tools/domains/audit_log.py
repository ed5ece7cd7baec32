"""Reading the audit log: `list_audit_events` (`audit:read`). Recording it is the runner's
(`tools.core.audit`)."""

from __future__ import annotations

from pydantic import Field

from storage.audit import audit_events_query
from storage.tables import AuditEvent
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import Unprocessable
from tools.core.fields import Id, IsoDatetime
from tools.core.models import OutputModel, Page, PageQuery, UtcDatetime
from tools.core.paging import paged
from tools.core.permissions import Permission

__all__ = ["list_audit_events"]


class AuditEventPublic(OutputModel):
    id: str
    occurred_at: UtcDatetime
    key_id: str | None
    key_name: str | None
    operation: str
    target_ids: dict[str, str]
    outcome: str = Field(description='"ok" or the error code.')


def _audit_event_public(row: AuditEvent) -> AuditEventPublic:
    return AuditEventPublic.model_validate(row, from_attributes=True)


class ListAuditEventsInput(PageQuery):
    operation: str | None = Field(default=None, max_length=60, description="e.g. create_course.")
    key_id: Id | None = None
    since: IsoDatetime | None = Field(default=None, description="Inclusive.")
    until: IsoDatetime | None = Field(default=None, description="Exclusive.")
    outcome: str | None = Field(default=None, max_length=30, description='"ok" or an error code.')


@operation(
    title="List audit events",
    permission=Permission.AUDIT_READ,
    http=("GET", "/audit-events"),
    input_rules=("since is not after until.",),
    kind="read",
    auth=("api_key", "session"),  # the owner reads it on the dashboard's Activity page
    transports=("mcp", "rest", "dashboard"),
)
async def list_audit_events(ctx: OperationContext, data: ListAuditEventsInput) -> Page[AuditEventPublic]:
    """List the audit log, newest first: each write's key, operation, target ids, time and outcome. Paginated."""
    if data.since and data.until and data.since > data.until:  # equal: an empty window, an empty page
        raise Unprocessable("Invalid input: since, until: since must not be after until")
    statement = audit_events_query(
        producer_id=ctx.producer_id, operation=data.operation, key_id=data.key_id, since=data.since, until=data.until,
        outcome=data.outcome,
    )
    return await paged(ctx.session, statement, query=data, convert=_audit_event_public)
