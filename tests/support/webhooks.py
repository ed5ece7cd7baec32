"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 that records what arrives;
and a delivery worker run in process for a block, with a wait for the deliveries it settles."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
from sqlalchemy import select
from sqlmodel import col

from server.settings import Settings
from server.webhooks import DeliveryWorker
from storage.engine import Store
from storage.ids import utcnow
from storage.tables import WebhookDelivery, WebhookEndpoint
from tests.support.factories import Tenant, make_course, mcp_client, ok
from tools.core.context import Services

__all__ = ["Received", "Receiver", "courses_announced_to", "delivering", "receiver", "settle"]


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What a webhook receiver saw: every POST in arrival order, and how many were in flight at once
    (in all, and per webhook-id). It gives the statuses in `answers` first, then 200, after `delay` s."""

    url: str = ""
    delay: float = 0.0
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    in_flight: Counter = field(default_factory=Counter)
    most_in_flight: int = 0
    same_id_at_once: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [request.headers["webhook-id"] for request in self.received]

    def events(self) -> list[dict]:
        with self.lock:
            return [request.event for request in self.received]


@contextmanager
def receiver(*, delay: float = 0.0) -> Iterator[Receiver]:
    """A `Receiver` listening on a free loopback port (a thread per request) until the block ends."""
    seen = Receiver(delay=delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            webhook_id = self.headers["webhook-id"]
            with seen.lock:
                if seen.in_flight[webhook_id]:
                    seen.same_id_at_once.append(webhook_id)
                seen.in_flight[webhook_id] += 1
                seen.most_in_flight = max(seen.most_in_flight, sum(seen.in_flight.values()))
                answer = seen.answers.pop(0) if seen.answers else 200
                seen.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body, answer, time.monotonic())
                )
            time.sleep(seen.delay)  # a slow receiver: the answer comes late on the real socket
            with seen.lock:  # no longer in flight once it is answered (held: not answered yet)
                seen.in_flight[webhook_id] -= 1
            self.send_response(answer)
            if 300 <= answer < 400:
                self.send_header("Location", f"{seen.url}/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # a sender killed mid-request leaves a broken pipe: expected here

    httpd = Server(("127.0.0.1", 0), Handler)
    seen.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        httpd.shutdown()
        httpd.server_close()


@asynccontextmanager
async def delivering(store: Store, **settings: Any) -> AsyncIterator[None]:
    """A delivery worker on `store` for the block: looking every 50 ms, retrying twice at once."""
    configured = {
        "webhooks_allow_loopback": True,
        "webhook_poll_seconds": 0.05,
        "webhook_retry_schedule": [0, 0],
        **settings,
    }
    worker = DeliveryWorker(store, clock=utcnow, settings=Settings(database_url=store.url, **configured))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(worker.run)
        try:
            yield
        finally:
            worker.stop()


async def settle(
    store: Store, condition: Callable[[list[WebhookDelivery], WebhookEndpoint], bool]
) -> tuple[list, WebhookEndpoint]:
    """The deliveries (by sequence) and the one endpoint, once `condition` holds for them."""
    with anyio.fail_after(10):
        while True:
            async with store.sessions() as session:
                deliveries = list(
                    (
                        await session.scalars(select(WebhookDelivery).order_by(col(WebhookDelivery.sequence)))
                    ).all()
                )
                endpoint = (await session.scalars(select(WebhookEndpoint))).one()
            if condition(deliveries, endpoint):
                return deliveries, endpoint
            await anyio.sleep(0.02)  # the delivery worker runs beside the test: poll the rows it writes


async def courses_announced_to(store: Store, tenant: Tenant, url: str, *slugs: str) -> list[str]:
    """An endpoint at `url` for course.created, and a course for each slug; the courses' ids."""
    async with mcp_client(store, tenant.key, services=Services(webhooks_allow_loopback=True)) as client:
        ok(await client.call_tool("create_webhook", {"url": url, "eventTypes": ["course.created"]}))
        return [(await make_course(client, slug=slug))["id"] for slug in slugs]
