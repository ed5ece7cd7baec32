"""Webhook endpoints: where a producer's events are POSTed, signed per Standard Webhooks.

Managed by operations (`webhooks:read|write`): over MCP and REST with an API key, and on the
dashboard by the owner; rotating the secret, test events and the delivery log are the owner's. An endpoint's URL must reach a public address (`tools.core.outbound`),
checked here and again by the delivery worker (`server.webhooks`) at every delivery. Its signing
secret (`whsec_` + 24 random bytes, base64, the format the `standardwebhooks` library reads) is in
`create_webhook`'s and `rotate_webhook_secret`'s results only: marked `Secret`, it is not kept for
a replay of `create_webhook` under its idempotency key, which answers null and a `secretNote`.
"""

from __future__ import annotations

import base64
import secrets

from pydantic import Field

from storage import webhooks as webhooks_storage
from storage.ids import new_id
from storage.tables import WebhookEndpoint
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import NotFound, Unprocessable
from tools.core.fields import Id, Secret
from tools.core.models import (
    Deleted,
    InputModel,
    OutputModel,
    Page,
    PageQuery,
    SecretResult,
    UtcDatetime,
    WebUrl,
)
from tools.core.outbound import UnsafeUrl, check_outbound_url
from tools.core.paging import paged
from tools.core.permissions import Permission
from tools.core.principal import Identities
from tools.core.updates import given_changes, unchanged
from tools.domains.event_feed import EventTypes

__all__ = [
    "create_webhook",
    "delete_webhook",
    "list_webhook_deliveries",
    "list_webhooks",
    "rotate_webhook_secret",
    "send_test_webhook",
    "update_webhook",
]

_WHO = ("api_key", "session")  # an agent with an API key, or the owner on the dashboard
_WHERE = ("mcp", "rest", "dashboard")
# Rotating the secret, test events and the delivery log are the owner's, on the dashboard or
# REST with the session: they stay out of every agent's tools/list (its context budget).
_OWNER = ("session",)
_OWNER_WHERE = ("rest", "dashboard")
TEST_EVENT_TYPE = "webhook.test"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookPublic(OutputModel):
    id: str
    url: str
    description: str | None
    event_types: list[str] = Field(description="Empty: every type.")
    enabled: bool
    disabled_reason: str | None
    failing_since: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    identities: Identities = Field(description="pseudonymous: payloads name students by a pseudonym.")


class WebhookWithSecret(WebhookPublic):
    secret: Secret | None = Field(
        description="Verify signatures with it. Shown only here: store it now (a replay: null)."
    )


class WebhookResult(OutputModel):
    webhook: WebhookPublic


class WebhookSecretResult(SecretResult):
    webhook: WebhookWithSecret


class CreateWebhookInput(InputModel):
    url: WebUrl = Field(description="https, public address.")
    event_types: EventTypes = Field(default_factory=list)
    description: str | None = Field(default=None, max_length=500)
    identities: Identities = "full"


class WebhookRef(InputModel):
    webhook_id: Id


class UpdateWebhookInput(WebhookRef):
    url: WebUrl = unchanged()
    event_types: EventTypes = unchanged()
    description: str | None = Field(default=None, max_length=500, description="null clears it.")
    enabled: bool = unchanged()


class ListDeliveriesInput(PageQuery):
    webhook_id: Id


class DeliveryPublic(OutputModel):
    id: str
    event_id: str
    sequence: int
    state: str = Field(description="pending, succeeded or failed (retries exhausted).")
    attempts: int
    next_attempt_at: UtcDatetime
    last_attempt_at: UtcDatetime | None
    response_status: int | None
    response_excerpt: str | None
    latency_ms: int | None
    error: str | None


class DeliveryResult(OutputModel):
    delivery: DeliveryPublic


WEBHOOK_URL_RULE = (
    "url is https (http only to a loopback host, where the server admits those), holds no user name or "
    "password, has a port from 1 to 65535, and its host is a host name that resolves, only to public addresses."
)


LOOPBACK_HINT = (
    "to test on your own machine, start the server with BLOHKO_WEBHOOKS_ALLOW_LOOPBACK=1 (local development only), "
    "or give the public https URL of a tunnel to your receiver"
)
"""What a refused loopback URL's message adds: the two ways to receive webhooks locally."""


async def _checked_url(ctx: OperationContext, url: str) -> str:
    allow_loopback = ctx.services.webhooks_allow_loopback
    try:
        await check_outbound_url(url, allow_loopback=allow_loopback)
    except UnsafeUrl as unsafe:
        # Refused only for being on this machine (the setting would admit it): say how to test locally.
        hint = f"; {LOOPBACK_HINT}" if not allow_loopback and await _loopback_only(url) else ""
        raise Unprocessable(f"Invalid input: url: {unsafe}{hint}") from None
    return url


async def _loopback_only(url: str) -> bool:
    try:
        await check_outbound_url(url, allow_loopback=True)
    except UnsafeUrl:
        return False
    return True


async def _owned(ctx: OperationContext, webhook_id: str) -> WebhookEndpoint:
    endpoint = await webhooks_storage.get_endpoint(ctx.db, producer_id=ctx.producer_id, webhook_id=webhook_id)
    if endpoint is None:
        raise NotFound("Webhook not found")
    return endpoint


def _public(endpoint: WebhookEndpoint) -> WebhookPublic:
    return WebhookPublic.model_validate(endpoint, from_attributes=True)


def _with_secret(endpoint: WebhookEndpoint) -> WebhookWithSecret:
    return WebhookWithSecret.model_validate(endpoint, from_attributes=True)


@operation(
    title="Create webhook",
    permission=Permission.WEBHOOKS_WRITE,
    http=("POST", "/webhooks", 201),
    input_rules=(WEBHOOK_URL_RULE,),
    kind="write",
    auth=_WHO,
    transports=_WHERE,
)
async def create_webhook(ctx: OperationContext, data: CreateWebhookInput) -> WebhookSecretResult:
    """POST events (eventTypes; empty: all) to url, signed (Standard Webhooks), in order, retried.
    Secret shown once."""
    now = ctx.now()
    endpoint = await webhooks_storage.add_endpoint(
        ctx.db,
        endpoint_id=new_id("wh"),
        producer_id=ctx.producer_id,
        url=await _checked_url(ctx, data.url),
        description=data.description,
        event_types=data.event_types,
        secret=new_secret(),
        at=now,
        identities=data.identities,
    )
    return WebhookSecretResult(webhook=_with_secret(endpoint))


@operation(
    title="List webhooks",
    permission=Permission.WEBHOOKS_READ,
    http=("GET", "/webhooks"),
    kind="read",
    auth=_WHO,
    transports=_WHERE,
)
async def list_webhooks(ctx: OperationContext, data: PageQuery) -> Page[WebhookPublic]:
    """Webhook endpoints, with why any is disabled. Paginated."""
    statement = webhooks_storage.endpoints_query(producer_id=ctx.producer_id)
    return await paged(ctx.db, statement, query=data, convert=_public)


@operation(
    title="Update webhook",
    permission=Permission.WEBHOOKS_WRITE,
    http=("PATCH", "/webhooks/{webhookId}"),
    input_rules=(WEBHOOK_URL_RULE,),
    kind="write",
    idempotent=True,
    auth=_WHO,
    transports=_WHERE,
)
async def update_webhook(ctx: OperationContext, data: UpdateWebhookInput) -> WebhookResult:
    """Change a webhook; enabled: true re-enables one disabled for failing."""
    endpoint = await _owned(ctx, data.webhook_id)
    changes = given_changes(data, target=WebhookRef)
    if "url" in changes:
        await _checked_url(ctx, changes["url"])
    if changes.get("enabled"):
        changes.update(disabled_reason=None, failing_since=None)
    endpoint = await webhooks_storage.change_endpoint(
        ctx.db, endpoint_id=endpoint.id, changes=changes, at=ctx.now()
    )
    return WebhookResult(webhook=_public(endpoint))


@operation(
    title="Delete webhook",
    permission=Permission.WEBHOOKS_WRITE,
    http=("DELETE", "/webhooks/{webhookId}"),
    kind="delete",
    auth=_WHO,
    transports=_WHERE,
)
async def delete_webhook(ctx: OperationContext, data: WebhookRef) -> Deleted:
    """Delete a webhook and its delivery log."""
    endpoint = await _owned(ctx, data.webhook_id)
    await webhooks_storage.delete_endpoint(ctx.db, endpoint_id=endpoint.id)
    return Deleted(id=endpoint.id)


@operation(
    title="Rotate webhook secret",
    permission=None,
    http=("POST", "/webhooks/{webhookId}/rotate-secret"),
    kind="write",
    auth=_OWNER,
    transports=_OWNER_WHERE,
)
async def rotate_webhook_secret(ctx: OperationContext, data: WebhookRef) -> WebhookSecretResult:
    """Give the webhook a new signing secret (in this result only); deliveries sign with it at once."""
    endpoint = await _owned(ctx, data.webhook_id)
    endpoint = await webhooks_storage.change_endpoint(
        ctx.db, endpoint_id=endpoint.id, changes={"secret": new_secret()}, at=ctx.now()
    )
    return WebhookSecretResult(webhook=_with_secret(endpoint))


@operation(
    title="Send test webhook",
    permission=None,
    http=("POST", "/webhooks/{webhookId}/test", 202),
    kind="write",
    auth=_OWNER,
    transports=_OWNER_WHERE,
)
async def send_test_webhook(ctx: OperationContext, data: WebhookRef) -> DeliveryResult:
    """Queue a webhook.test event for this webhook only; its delivery shows in list_webhook_deliveries."""
    endpoint = await _owned(ctx, data.webhook_id)
    now = ctx.now()
    # A test event changes nothing in the school, so it stays out of the feed: its own sequence is
    # negative (the feed reads from 0 up). Its delivery queues behind what the endpoint already
    # has to receive, under the producer's latest sequence number.
    delivery = await webhooks_storage.add_test_delivery(
        ctx.db,
        event_id=new_id("evt"),
        producer_id=ctx.producer_id,
        event_sequence=-(secrets.randbelow(2**62) + 1),
        event_type=TEST_EVENT_TYPE,
        data={"webhookId": endpoint.id},
        key_id=ctx.principal.key_id,
        key_name=ctx.principal.audit_name,
        delivery_id=new_id("whd"),
        endpoint_id=endpoint.id,
        at=now,
    )
    ctx.queued_deliveries += 1
    return DeliveryResult(delivery=DeliveryPublic.model_validate(delivery, from_attributes=True))


@operation(
    title="List webhook deliveries",
    permission=None,
    http=("GET", "/webhooks/{webhookId}/deliveries"),
    kind="read",
    auth=_OWNER,
    transports=_OWNER_WHERE,
)
async def list_webhook_deliveries(ctx: OperationContext, data: ListDeliveriesInput) -> Page[DeliveryPublic]:
    """A webhook's delivery log, newest first: state, attempts, response status, latency. Paginated."""
    endpoint = await _owned(ctx, data.webhook_id)
    statement = webhooks_storage.deliveries_query(endpoint_id=endpoint.id)
    return await paged(
        ctx.db,
        statement,
        query=data,
        convert=lambda row: DeliveryPublic.model_validate(row, from_attributes=True),
    )
