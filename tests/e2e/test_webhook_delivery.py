"""Webhook delivery, end to end: real `blohko` processes deliver to a real HTTP
receiver on 127.0.0.1. Deliveries arrive signed per Standard Webhooks, are retried after failures,
keep each endpoint's order, go once even with two processes delivering, and survive a SIGKILL.
The worker's other rules (retries running out, disabling, redirects, the address checked at each
delivery) are tested in process, against the same receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import cycle, pairwise

import anyio
import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from server.settings import Settings
from storage.engine import open_store
from storage.ids import utcnow
from storage.tables import WebhookDelivery, WebhookEndpoint
from tests.support.factories import DEFAULT_CATEGORY_ID, Tenant, make_tenant
from tests.support.processes import BLOHKO, cli_env, http_server
from tests.support.webhooks import Receiver, courses_announced_to, delivering, receiver, settle

FAST_DELIVERY = {
    "BLOHKO_WEBHOOKS_ALLOW_LOOPBACK": "1",
    "BLOHKO_WEBHOOK_RETRY_SCHEDULE": "[0.2,0.2,0.2]",
    "BLOHKO_WEBHOOK_POLL_SECONDS": "0.1",
    "BLOHKO_WEBHOOK_LEASE_SECONDS": "2",
    "BLOHKO_WEBHOOK_TIMEOUT_SECONDS": "1.5",  # shorter than the lease, as the settings require
    "BLOHKO_RATE_LIMIT_PER_MINUTE": "0",
}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # real processes deliver to a real receiver: poll what it saw


def kill_mid_delivery(server, hooks: Receiver) -> str:
    """SIGKILL `server` while the receiver holds one of its requests unanswered, a few deliveries
    into a burst; that request's webhook-id."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with hooks.lock:  # held: the request in flight cannot be answered before the kill
            in_flight = [webhook_id for webhook_id, count in hooks.in_flight.items() if count]
            if len(hooks.received) >= 4 and in_flight:
                os.kill(server.process.pid, signal.SIGKILL)
                server.process.wait()
                return in_flight[0]
        time.sleep(0.005)  # the real server is delivering: catch a delivery in flight
    raise AssertionError("no delivery was in flight to kill")


# ---- a platform: a database, a producer, a key


@dataclass(frozen=True)
class Platform:
    env: dict[str, str]
    owner_user_id: str
    key: str

    @property
    def database_url(self) -> str:
        return self.env["BLOHKO_DATABASE_URL"]

    def client(self, server) -> httpx.Client:
        return httpx.Client(
            base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )


def new_platform(database_url: str, **settings: str) -> Platform:
    """A producer with a full-access key on the test's database (made in process: the CLI's
    start-up cost, paid three times, would be most of these tests' time)."""

    async def make() -> Tenant:
        async with open_store(database_url) as store:
            return await make_tenant(store, name="Hook Academy", permissions=["*"])

    tenant = anyio.run(make)
    return Platform(
        env=cli_env(database_url, **{**FAST_DELIVERY, **settings}),
        owner_user_id=tenant.owner_user_id,
        key=tenant.key,
    )


def subscribe(api: httpx.Client, url: str, *event_types: str) -> dict:
    """A webhook endpoint for `url` (every type when none is named), with its secret."""
    response = api.post("/webhooks", json={"url": url, "eventTypes": list(event_types)})
    assert response.status_code == 201, response.text
    return response.json()["webhook"]


def created(response: httpx.Response, name: str) -> dict:
    assert response.status_code == 201, response.text
    return response.json()[name]


def new_community(api: httpx.Client, slug: str) -> str:
    return created(api.post("/communities", json={"name": "Hook Circle", "slug": slug}), "community")["id"]


def new_thread(api: httpx.Client, platform: Platform, community_id: str, title: str) -> str:
    body = {"title": title, "content": "Hello", "userId": platform.owner_user_id}
    return created(api.post(f"/communities/{community_id}/threads", json=body), "thread")["id"]


def new_course(api: httpx.Client, slug: str) -> httpx.Response:
    return api.post(
        "/courses", json={"title": f"Course {slug}", "slug": slug, "categoryId": DEFAULT_CATEGORY_ID}
    )


def stored_deliveries(database_url: str) -> list[WebhookDelivery]:
    async def read() -> list[WebhookDelivery]:
        async with open_store(database_url) as store, store.sessions() as session:
            return list(
                (await session.scalars(select(WebhookDelivery).order_by(col(WebhookDelivery.sequence)))).all()
            )

    return anyio.run(read)


def stored_endpoint(database_url: str, endpoint_id: str) -> WebhookEndpoint:
    async def read() -> WebhookEndpoint:
        async with open_store(database_url) as store, store.sessions() as session:
            endpoint = await session.get(WebhookEndpoint, endpoint_id)
            assert endpoint is not None, f"no webhook endpoint {endpoint_id}"
            return endpoint

    return anyio.run(read)


# ---- the tests


def test_the_receiver_gets_thread_created_signed_with_the_endpoints_secret(database_url, tmp_path):
    # A poll far longer than the wait below: the write itself wakes its process's worker.
    platform = new_platform(database_url, BLOHKO_WEBHOOK_POLL_SECONDS="30")
    with (
        receiver() as hooks,
        http_server(platform.env, tmp_path / "server.log") as server,
        platform.client(server) as api,
    ):
        webhook = subscribe(api, hooks.url, "thread.created")
        community_id = new_community(api, "signed-circle")
        thread_id = new_thread(api, platform, community_id, "First post")
        wait_until(
            lambda: bool(hooks.received), "the thread.created webhook, due within a few seconds", timeout=5
        )
        arrived = hooks.received[0]
    assert "Application shutdown complete" in server.log(), (
        "the delivery worker held the server's shutdown up"
    )
    assert len(hooks.received) == 1  # the community.created event is not subscribed to
    payload = Webhook(webhook["secret"]).verify(arrived.body, arrived.headers)
    assert payload["type"] == "thread.created" and payload["data"]["id"] == thread_id
    assert set(payload) == {"id", "type", "sequence", "occurredAt", "data"}
    assert arrived.headers["webhook-id"] == payload["id"] and payload["id"].startswith("evt_")
    assert abs(int(arrived.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    assert arrived.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(arrived.body, arrived.headers)  # another secret
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook["secret"]).verify(
            arrived.body.replace(b"First post", b"Forged post"), arrived.headers
        )


def test_a_failed_delivery_is_retried_until_it_succeeds_and_the_next_waits_for_it(database_url, tmp_path):
    platform = new_platform(database_url)
    with (
        receiver() as hooks,
        http_server(platform.env, tmp_path / "server.log") as server,
        platform.client(server) as api,
    ):
        webhook = subscribe(api, hooks.url, "course.created")
        hooks.answers = [500, 500]
        first = created(new_course(api, "first-course"), "course")["id"]
        second = created(new_course(api, "second-course"), "course")["id"]
        wait_until(
            lambda: len(hooks.received) == 4, "three attempts of the first course and one of the second"
        )
        time.sleep(0.5)  # several polls: nothing more is sent
    arrivals = [(request.event["data"]["id"], request.answered) for request in hooks.received]
    assert arrivals == [(first, 500), (first, 500), (first, 200), (second, 200)]
    first_attempts = [request.at for request in hooks.received[:3]]
    assert all(later - earlier >= 0.2 for earlier, later in pairwise(first_attempts)), (
        "retried before its time"
    )
    deliveries = stored_deliveries(platform.database_url)
    assert [(d.state, d.attempts, d.response_status) for d in deliveries] == [
        ("succeeded", 3, 200),
        ("succeeded", 1, 200),
    ]
    assert all(d.lease_until is None and d.latency_ms is not None and d.error is None for d in deliveries)
    endpoint = stored_endpoint(platform.database_url, webhook["id"])
    assert endpoint.enabled and endpoint.failing_since is None


def test_a_rolled_back_write_sends_nothing(database_url, tmp_path):
    platform = new_platform(database_url)
    with (
        receiver() as hooks,
        http_server(platform.env, tmp_path / "server.log") as server,
        platform.client(server) as api,
    ):
        subscribe(api, hooks.url)
        kept = created(new_course(api, "taken-slug"), "course")["id"]
        assert new_course(api, "taken-slug").status_code == 409
        last = created(new_course(api, "after-the-refusal"), "course")["id"]
        # An endpoint's deliveries arrive in order: once the last write's has come, so has all before it.
        wait_until(
            lambda: any(event["data"]["id"] == last for event in hooks.events()), "the last course's webhook"
        )
    assert [(event["type"], event["data"]["id"]) for event in hooks.events()] == [
        ("course.created", kept),
        ("course.created", last),
    ]
    deliveries = stored_deliveries(platform.database_url)
    assert [d.event_id for d in deliveries] == hooks.ids()


def _each_delivered_once_in_order(hooks, thread_ids: set[str], database_url: str) -> None:
    """Each thread's event reached the receiver once, one at a time, in sequence, at the first attempt."""
    events = hooks.events()
    assert {event["data"]["id"] for event in events} == thread_ids
    assert len(events) == len(thread_ids) and max(Counter(hooks.ids()).values()) == 1, (
        "an event was delivered twice"
    )
    assert hooks.same_id_at_once == [] and hooks.most_in_flight == 1, "deliveries to one endpoint overlapped"
    sequences = [event["sequence"] for event in events]
    assert sequences == sorted(sequences), "an endpoint's events arrived out of order"
    assert all(d.state == "succeeded" and d.attempts == 1 for d in stored_deliveries(database_url))


@pytest.mark.postgres_only
def test_two_processes_deliver_200_events_once_each_in_order(database_url, tmp_path):
    # No lease runs out and no answer is late (a late one is retried: at least once), so exactly
    # once on a busy machine too; each delivery is logged, to show both processes delivered.
    platform = new_platform(
        database_url,
        BLOHKO_WEBHOOK_LEASE_SECONDS="60",
        BLOHKO_WEBHOOK_TIMEOUT_SECONDS="30",
        BLOHKO_LOG_LEVEL="DEBUG",
    )
    with (
        receiver(delay=0.002) as hooks,
        http_server(platform.env, tmp_path / "a.log") as first,
        http_server(platform.env, tmp_path / "b.log") as second,
        platform.client(first) as api_a,
        platform.client(second) as api_b,
    ):
        subscribe(api_a, hooks.url, "thread.created")
        community_id = new_community(api_b, "busy-circle")
        with ThreadPoolExecutor(8) as pool:
            writes = [
                pool.submit(new_thread, api, platform, community_id, f"Post {n}")
                for n, api in zip(range(200), cycle((api_a, api_b)))
            ]
            thread_ids = {write.result() for write in writes}
        wait_until(lambda: len(hooks.received) >= 200, "200 webhooks", timeout=40)
        time.sleep(0.5)  # several polls of both processes: nothing is sent twice
    _each_delivered_once_in_order(hooks, thread_ids, platform.database_url)
    delivered_by = [server.log().count(": answer 200") for server in (first, second)]
    assert sum(delivered_by) == 200 and min(delivered_by) > 0, f"not both processes delivered: {delivered_by}"


def test_two_workers_of_one_server_deliver_200_events_once_each_in_order(database_url, tmp_path):
    # `blohko serve --http --workers 2`, on either engine: every worker runs a delivery worker, and
    # leases keep them from sending an event twice (on SQLite a lease is a write: they take turns).
    platform = new_platform(
        database_url, BLOHKO_WEBHOOK_LEASE_SECONDS="60", BLOHKO_WEBHOOK_TIMEOUT_SECONDS="30"
    )
    with (
        receiver(delay=0.002) as hooks,
        http_server(platform.env, tmp_path / "server.log", workers=2) as server,
        platform.client(server) as api,
    ):
        subscribe(api, hooks.url, "thread.created")
        community_id = new_community(api, "worker-circle")
        with ThreadPoolExecutor(8) as pool:
            writes = [pool.submit(new_thread, api, platform, community_id, f"Post {n}") for n in range(200)]
            thread_ids = {write.result() for write in writes}
        wait_until(lambda: len(hooks.received) >= 200, "200 webhooks", timeout=40)
        time.sleep(0.5)  # several polls of both workers: nothing is sent twice
    _each_delivered_once_in_order(hooks, thread_ids, platform.database_url)


def test_a_delivery_in_flight_when_its_process_is_killed_is_sent_again(database_url, tmp_path):
    platform = new_platform(database_url)
    with receiver(delay=0.15) as hooks:
        with http_server(platform.env, tmp_path / "server.log") as server, platform.client(server) as api:
            subscribe(api, hooks.url, "thread.created")
            community_id = new_community(api, "doomed-circle")
            thread_ids = {new_thread(api, platform, community_id, f"Post {n}") for n in range(15)}
            cut_off = kill_mid_delivery(server, hooks)
        assert len(hooks.received) < 15, "the kill came after the burst"
        # A worker of its own takes over: the killed process's lease runs out, and it sends that one again.
        with (tmp_path / "worker.log").open("w") as log:
            worker = subprocess.Popen(
                [BLOHKO, "worker"], env=platform.env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                wait_until(
                    lambda: {event["data"]["id"] for event in hooks.events()} == thread_ids,
                    "every thread's webhook",
                )
            finally:
                worker.terminate()
                worker.wait(timeout=15)
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()
    assert hooks.ids().count(cut_off) == 2, "the delivery cut off by the kill was not sent again"
    assert hooks.same_id_at_once == []
    deliveries = stored_deliveries(platform.database_url)
    assert len(deliveries) == 15 and all(d.state == "succeeded" for d in deliveries)


# ---- the worker's rules, in process


async def test_a_delivery_whose_retries_run_out_fails_and_the_next_one_goes(store, tenant):
    with receiver() as hooks:
        hooks.answers = [500, 500, 500]
        first, second = await courses_announced_to(store, tenant, hooks.url, "doomed", "next-in-line")
        async with delivering(store):
            deliveries, endpoint = await settle(
                store, lambda deliveries, _: all(d.state != "pending" for d in deliveries)
            )
    assert [(d.state, d.attempts, d.response_status) for d in deliveries] == [
        ("failed", 3, 500),
        ("succeeded", 1, 200),
    ]
    assert [event["data"]["id"] for event in hooks.events()] == [first, first, first, second]
    assert endpoint.enabled and endpoint.failing_since is None  # the success ended the failing spell


async def test_an_endpoint_failing_for_the_configured_hours_is_disabled_with_the_reason(store, tenant):
    with receiver() as hooks:
        hooks.answers = [500]
        await courses_announced_to(store, tenant, hooks.url, "unlucky")
        failing_since = utcnow() - timedelta(hours=72, minutes=1)
        async with store.writing() as db:
            await db.session.execute(update(WebhookEndpoint).values(failing_since=failing_since))
        async with delivering(store):
            # Both rows change in one transaction, but `settle` reads them with two statements: on
            # PostgreSQL (read committed) the commit may fall between them, so wait for both.
            deliveries, endpoint = await settle(
                store, lambda deliveries, endpoint: not endpoint.enabled and deliveries[0].attempts == 1
            )
            await anyio.sleep(0.3)  # several polls: a disabled endpoint gets nothing more
    assert endpoint.disabled_reason == "Deliveries failed for 72 hours: last answer 500"
    assert endpoint.failing_since == failing_since
    assert len(hooks.received) == 1 and [(d.state, d.attempts) for d in deliveries] == [("pending", 1)]


async def test_a_redirect_is_a_failure_and_is_not_followed(store, tenant):
    with receiver() as hooks:
        hooks.answers = [302]
        await courses_announced_to(store, tenant, hooks.url, "moved")
        async with delivering(store, webhook_retry_schedule=[]):
            [delivery], _ = await settle(store, lambda deliveries, _: deliveries[0].state == "failed")
    assert len(hooks.received) == 1
    assert delivery.response_status == 302 and "redirects are not followed" in delivery.response_excerpt


async def test_each_delivery_checks_the_address_again(store, tenant):
    with receiver() as hooks:
        await courses_announced_to(store, tenant, hooks.url, "rebound")
        # Accepted when it was made; now the worker admits no loopback address, as if DNS had changed.
        async with delivering(store, webhooks_allow_loopback=False, webhook_retry_schedule=[]):
            [delivery], _ = await settle(store, lambda deliveries, _: deliveries[0].state == "failed")
    assert hooks.received == []
    assert delivery.response_status is None and "loopback" in delivery.error
    assert hooks.url not in delivery.error  # a URL may carry a token: errors name the reason only


def test_a_lease_no_longer_than_the_delivery_timeout_is_refused_naming_both_settings():
    with pytest.raises(
        ValueError,
        match="BLOHKO_WEBHOOK_LEASE_SECONDS \\(10\\) must be longer than BLOHKO_WEBHOOK_TIMEOUT_SECONDS \\(10\\)",
    ):
        Settings(webhook_lease_seconds=10, webhook_timeout_seconds=10)
    assert Settings(webhook_lease_seconds=11, webhook_timeout_seconds=10).webhook_lease_seconds == 11
