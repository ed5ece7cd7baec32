"""The webhook delivery worker: POSTs each pending delivery (written with its event by
`tools.core.events`) to its endpoint, signed per Standard Webhooks, retried on the configured schedule.

Every `blohko serve --http` process runs one (the HTTP app's lifespan); `blohko worker` runs one
alone. Any number may share a database. A worker claims due deliveries in a short transaction by
setting their lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers never claim the same
row; on SQLite the one writer serializes claims), sends them outside any transaction, then records
the answer if the lease is still its own. A worker that dies mid-send leaves its lease to expire and
the delivery goes again: at least once, and receivers deduplicate by `webhook-id`, the event's id.
Its reads and writes go through `tools.core.internal`: leases and recorded attempts are the
server's own bookkeeping, one transaction each and never audited (the event a delivery carries was
audited with the write that made it).

An endpoint gets its events in sequence order: only its oldest pending delivery is due, so a later
event waits while an earlier one is retried, until that one succeeds or fails for good.

Deliveries go through the outbound client (`tools.core.outbound`), the one the OAuth metadata
document fetch uses: the endpoint's URL is checked against the address policy again at every
delivery, the request goes to an address that check resolved (DNS rebinding cannot move it inside),
redirects are not followed, and the whole exchange must end within `webhook_timeout_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
from standardwebhooks.webhooks import Webhook

from server.settings import Settings
from storage import webhooks as deliveries
from storage.engine import Store
from storage.tables import Event, WebhookEndpoint
from tools.core.context import Clock, Signal
from tools.core.internal import reading, writing
from tools.core.outbound import OutboundClient, RequestFailed, UnsafeUrl
from tools.core.pseudonyms import pseudonymized_model
from tools.domains.event_feed import EventPublic

__all__ = ["DeliveryWorker"]

logger = logging.getLogger("blohko.webhooks")

_MOST_IN_FLIGHT = 50
"""Deliveries one worker sends at once (each to another endpoint: only an endpoint's oldest is due)."""
_TEXT_LIMIT = 500
"""Characters kept of a response body, and of an error (the columns' size)."""
_EXCERPT_BYTES = 4 * _TEXT_LIMIT
"""Bytes read of a response body: enough for `_TEXT_LIMIT` characters (UTF-8 takes at most 4 a character)."""


@dataclass(frozen=True)
class _Claimed:
    """A delivery this worker holds until `lease_until`, with all it needs to send it."""

    delivery_id: str
    lease_until: datetime
    endpoint_id: str
    url: str
    secret: str
    event_id: str
    body: str


@dataclass(frozen=True)
class _Answer:
    """What one attempt came to: an HTTP answer (`status`), or an `error` before there was one."""

    status: int | None = None
    excerpt: str | None = None
    latency_ms: int | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def summary(self) -> str:
        return f"answer {self.status}" if self.status is not None else f"error: {self.error}"


def _body(event: Event, sequence: int, endpoint: WebhookEndpoint) -> str:
    """The event as the feed shows it, less the key that made it (an id the receiver has no use for),
    under the delivery's sequence (the event's; 0 for a test event, which is outside the feed); for
    a pseudonymous endpoint, students named by their pseudonym for that endpoint."""
    public = EventPublic.model_validate(event, from_attributes=True).model_copy(update={"sequence": sequence})
    if endpoint.identities == "pseudonymous":
        public = pseudonymized_model(EventPublic, public, salt=endpoint.id)
    return public.model_dump_json(by_alias=True, exclude={"key_id"})


class DeliveryWorker:
    """Sends due webhook deliveries and records their answers, until `stop()`."""

    def __init__(
        self, store: Store, *, clock: Clock, settings: Settings, woken_by: Signal | None = None
    ) -> None:
        """`woken_by`: notified when this process commits new deliveries, so they go at once rather
        than at the next poll."""
        self._store = store
        self._woken_by = woken_by
        self._clock = clock
        self._settings = settings
        self._stopping = False
        self._wake = asyncio.Event()
        self._in_flight = 0
        self._outbound = OutboundClient(allow_loopback=settings.webhooks_allow_loopback)

    async def run(self) -> None:
        """Deliver until `stop()`, then return once the deliveries in flight are recorded.

        It claims what is due, sends each delivery on its own (a slow endpoint holds up no other),
        and looks again at once when a delivery is done (its endpoint's next one may be due) or
        `woken_by` says new ones were queued, otherwise every poll interval. A failed look (the
        database away) is logged and tried again."""
        unsubscribe = self._woken_by.subscribe(self._wake.set) if self._woken_by else (lambda: None)
        try:
            await self._deliver_until_stopped()
        finally:
            unsubscribe()

    async def _deliver_until_stopped(self) -> None:
        async with self._outbound, anyio.create_task_group() as sending:
            while not self._stopping:
                self._wake.clear()
                try:
                    claimed = await self._claim(_MOST_IN_FLIGHT - self._in_flight)
                except Exception:
                    logger.exception(
                        "looking for due webhook deliveries failed; looking again in %g s",
                        self._settings.webhook_poll_seconds,
                    )
                    claimed = []
                for delivery in claimed:
                    self._in_flight += 1
                    sending.start_soon(self._deliver, delivery)
                if not claimed:
                    with anyio.move_on_after(self._settings.webhook_poll_seconds):
                        await self._wake.wait()

    def stop(self) -> None:
        """Make `run` return once the deliveries in flight are recorded."""
        self._stopping = True
        self._wake.set()

    async def _claim(self, limit: int) -> list[_Claimed]:
        """Lease up to `limit` due deliveries to this worker, in one short transaction."""
        if limit <= 0:
            return []
        async with reading(self._store, "webhook delivery poll") as db:  # an idle poll takes no write turn
            if not await deliveries.any_due(db, now=self._clock()):
                return []
        async with writing(self._store, "webhook delivery lease") as db:
            now = self._clock()
            lease_until = now + timedelta(seconds=self._settings.webhook_lease_seconds)
            leased = await deliveries.lease_due(db, now=now, limit=limit, lease_until=lease_until)
            return [
                _Claimed(
                    delivery_id=delivery.id,
                    lease_until=lease_until,
                    endpoint_id=endpoint.id,
                    url=endpoint.url,
                    secret=endpoint.secret,
                    event_id=event.id,
                    body=_body(event, delivery.sequence, endpoint),
                )
                for delivery, endpoint, event in leased
            ]

    async def _deliver(self, claimed: _Claimed) -> None:
        try:
            attempted_at = self._clock()
            answer = await self._send(claimed, attempted_at)
            if answer.succeeded:
                logger.debug(
                    "webhook delivery %s to endpoint %s: %s",
                    claimed.delivery_id,
                    claimed.endpoint_id,
                    answer.summary(),
                )
            else:
                logger.warning(
                    "webhook delivery %s to endpoint %s failed: %s",
                    claimed.delivery_id,
                    claimed.endpoint_id,
                    answer.summary(),
                )
            await self._record(claimed, answer, attempted_at)
        except Exception:  # its lease runs out, and it is sent again
            logger.exception("webhook delivery %s could not be recorded", claimed.delivery_id)
        finally:
            self._in_flight -= 1
            self._wake.set()

    async def _send(self, claimed: _Claimed, attempted_at: datetime) -> _Answer:
        """POST the event to one of the addresses its URL resolves to now, checked again here: a
        DNS answer that changed since the endpoint was made (rebinding) cannot point it inside."""
        headers = {
            "content-type": "application/json",
            "user-agent": "Blohko-Webhooks/1",
            "webhook-id": claimed.event_id,
            "webhook-timestamp": str(int(attempted_at.timestamp())),
            "webhook-signature": Webhook(claimed.secret).sign(claimed.event_id, attempted_at, claimed.body),
        }
        try:
            response = await self._outbound.request(
                "POST",
                claimed.url,
                deadline=self._settings.webhook_timeout_seconds,
                max_body_bytes=_EXCERPT_BYTES,
                headers=headers,
                content=claimed.body.encode(),
            )
        except (
            UnsafeUrl
        ) as unsafe:  # its reason, without the URL: a URL may carry a token, and logs are shared
            return _Answer(error=f"not sent: {str(unsafe).removeprefix(f'{claimed.url}: ')}"[:_TEXT_LIMIT])
        except RequestFailed as failure:
            return _Answer(error=str(failure)[:_TEXT_LIMIT])
        excerpt = response.body.decode("utf-8", "replace")[:_TEXT_LIMIT]
        if response.is_redirect:
            excerpt = f"redirects are not followed (Location: {response.headers.get('location', '')})"[
                :_TEXT_LIMIT
            ]
        return _Answer(status=response.status_code, excerpt=excerpt, latency_ms=response.latency_ms)

    async def _record(self, claimed: _Claimed, answer: _Answer, attempted_at: datetime) -> None:
        """Write down the attempt, if the delivery is still this worker's: a lease that ran out
        mid-send has let another worker send it again, and that attempt is the one to record."""
        settings = self._settings
        async with writing(self._store, "webhook delivery attempt") as db:
            now = self._clock()
            locked = await deliveries.lock_for_recording(
                db, endpoint_id=claimed.endpoint_id, delivery_id=claimed.delivery_id
            )
            if locked is None or locked[1].lease_until != claimed.lease_until:
                logger.info(
                    "webhook delivery %s was taken over or deleted while it was sent; not recorded",
                    claimed.delivery_id,
                )
                return
            endpoint, delivery = locked
            attempts = delivery.attempts + 1
            schedule = settings.webhook_retry_schedule
            if answer.succeeded:
                state, next_attempt_at = "succeeded", None
            elif attempts > len(schedule):
                state, next_attempt_at = "failed", None  # the endpoint's next delivery may go now
            else:
                state, next_attempt_at = delivery.state, now + timedelta(seconds=schedule[attempts - 1])
            await deliveries.record_attempt(
                db,
                delivery_id=delivery.id,
                attempted_at=attempted_at,
                state=state,
                next_attempt_at=next_attempt_at,
                response_status=answer.status,
                response_excerpt=answer.excerpt,
                latency_ms=answer.latency_ms,
                error=answer.error,
            )
            if answer.succeeded:
                await deliveries.set_endpoint_health(db, endpoint_id=endpoint.id, failing_since=None, at=now)
                return
            failing_since = endpoint.failing_since or attempted_at
            disabled_reason = None
            if now - failing_since >= timedelta(hours=settings.webhook_disable_after_hours):
                reason = f"Deliveries failed for {settings.webhook_disable_after_hours:g} hours: last {answer.summary()}"
                disabled_reason = reason[:_TEXT_LIMIT]
                logger.warning("webhook endpoint %s disabled: %s", endpoint.id, disabled_reason)
            await deliveries.set_endpoint_health(
                db,
                endpoint_id=endpoint.id,
                failing_since=failing_since,
                disabled_reason=disabled_reason,
                at=now,
            )
