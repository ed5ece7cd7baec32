"""Reading the audit log: `list_audit_events` (`audit:read`), and `name_audit_targets`, which the
dashboard's Activity page uses to show names where the log keeps ids. Recording it is the
runner's (`tools.core.audit`)."""

from __future__ import annotations

from pydantic import Field

from storage.audit import NAMED_ID_PREFIXES, audit_events_query, audit_target_names
from storage.tables import AuditEvent
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import Unprocessable
from tools.core.fields import Id, IsoDatetime
from tools.core.models import InputModel, OutputModel, Page, PageQuery, UtcDatetime
from tools.core.paging import paged
from tools.core.permissions import Permission

__all__ = ["list_audit_events", "name_audit_targets"]


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
    """Audit log, newest first: each write's key, operation, targets, time, outcome."""
    if data.since and data.until and data.since > data.until:  # equal: an empty window, an empty page
        raise Unprocessable("Invalid input: since, until: since must not be after until")
    statement = audit_events_query(
        producer_id=ctx.producer_id,
        operation=data.operation,
        key_id=data.key_id,
        since=data.since,
        until=data.until,
        outcome=data.outcome,
    )
    return await paged(ctx.db, statement, query=data, convert=_audit_event_public)


_MAX_NAMED_IDS = 200
"""A page of the Activity log: 25 events of at most 8 ids each."""


class NameAuditTargetsInput(InputModel):
    ids: list[Id] = Field(max_length=_MAX_NAMED_IDS, description="Ids from audit events' targetIds.")


class AuditTargetNames(OutputModel):
    names: dict[str, str] = Field(
        description="Each id's current name or title (a student's or the owner's name, a course's title, ...)."
    )
    gone: list[str] = Field(
        description="The ids of a kind that has names whose rows no longer exist (deleted since)."
    )


@operation(
    title="Name audit targets",
    permission=None,
    http=None,
    kind="read",
    auth=("session",),
    transports=("dashboard",),
)
async def name_audit_targets(ctx: OperationContext, data: NameAuditTargetsInput) -> AuditTargetNames:
    """The names and titles of the producer's rows that audit events name by id, for people to read."""
    names = await audit_target_names(ctx.db, producer_id=ctx.producer_id, ids=data.ids)
    gone = sorted(
        {value for value in data.ids if value not in names and value.partition("_")[0] in NAMED_ID_PREFIXES}
    )
    return AuditTargetNames(names=names, gone=gone)
