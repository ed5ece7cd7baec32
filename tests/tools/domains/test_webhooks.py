"""Webhook endpoints as operations: managed over MCP, REST and by the owner; URLs
checked against server-side request forgery; the secret shown once; deliveries queued with the
events they carry. Delivery itself (signing, retries, order, processes) is `test_webhook_delivery.py`."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

import jsonschema
import pytest
from sqlalchemy import select, text
from standardwebhooks.webhooks import Webhook

from storage.tables import AuditEvent, WebhookDelivery, WebhookEndpoint
from tests.support.factories import error, make_course, mcp_client, ok
from tests.support.rest import http_app, rest_client
from tests.support.text import match_in
from tests.support.webhooks import delivering, receiver, settle
from tools.core.context import Services
from tools.core.outbound import UnsafeUrl, check_outbound_url
from tools.domains.sign_ins import OWNER_ONLY
from tools.registry import OPERATIONS_BY_NAME

LOCAL = Services(webhooks_allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",  # private
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",  # link-local: the cloud metadata service
        "https://[::1]/hook",  # loopback, the setting off
        "https://localhost/hook",  # a host name that resolves to loopback
        "https://127.0.0.1/hook",
        "ftp://hooks.example.com/x",
        "https://user:pass@hooks.example.com/x",
    ],
)
async def test_endpoint_urls_that_reach_inside_are_refused(store, tenant, url):
    async with mcp_client(store, tenant.key) as client:
        refused = error(await client.call_tool("create_webhook", {"url": url}))
    # Not an http(s) URL: its schema's pattern says so (400); the others break the rule the
    # operation states beyond its schema (422).
    assert refused["error"] == ("bad_request" if url.startswith("ftp:") else "unprocessable")
    assert refused["message"].startswith("Invalid input: url:")
    async with store.sessions() as session:
        assert (await session.scalars(select(WebhookEndpoint))).all() == []


async def test_loopback_endpoints_need_the_setting_and_plain_http_only_there():
    with pytest.raises(UnsafeUrl):
        await check_outbound_url("http://127.0.0.1:9/hook", allow_loopback=False)
    allowed = await check_outbound_url("http://127.0.0.1:9/hook", allow_loopback=True)
    assert allowed.addresses == ("127.0.0.1",) and allowed.port == 9


async def test_create_shows_the_secret_once_and_lists_never_show_it(store, tenant):
    async with mcp_client(store, tenant.key, services=LOCAL) as client:
        created = ok(
            await client.call_tool(
                "create_webhook", {"url": "http://127.0.0.1:9/hook", "eventTypes": ["thread.created"]}
            )
        )
        listed = ok(await client.call_tool("list_webhooks", {}))
        unknown = error(
            await client.call_tool(
                "create_webhook", {"url": "http://127.0.0.1:9/hook", "eventTypes": ["thread.exploded"]}
            )
        )
    webhook = created["webhook"]
    assert (
        webhook["secret"].startswith("whsec_")
        and webhook["eventTypes"] == ["thread.created"]
        and webhook["enabled"] is True
    )
    assert [item["id"] for item in listed["data"]] == [webhook["id"]] and "secret" not in listed["data"][0]
    assert unknown["error"] == "bad_request" and "thread.exploded" in unknown["message"]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_replayed_create_webhook_shows_no_secret_keeps_none_and_the_secret_still_signs(
    store, tenant, caplog
):
    caplog.set_level(logging.DEBUG)
    documented = OPERATIONS_BY_NAME["create_webhook"].output_schema
    with receiver() as hooks:
        body = {"url": hooks.url, "eventTypes": ["course.created"]}
        async with rest_client(http_app(store, webhooks_allow_loopback=True), tenant.key) as http:
            first = await http.post("/webhooks", json=body, headers={"Idempotency-Key": "hook-1"})
            again = await http.post("/webhooks", json=body, headers={"Idempotency-Key": "hook-1"})
        async with mcp_client(store, tenant.key, services=LOCAL) as client:  # the same API key, over MCP
            over_mcp = ok(await client.call_tool("create_webhook", {**body, "idempotencyKey": "hook-1"}))
            course = await make_course(client)
        async with delivering(store):
            await settle(store, lambda deliveries, _: [d.state for d in deliveries] == ["succeeded"])
    assert first.status_code == again.status_code == 201, again.text
    shown = first.json()
    secret = shown["webhook"]["secret"]
    assert secret.startswith("whsec_") and shown["secretNote"] is None
    for replay in (again.json(), over_mcp):
        assert secret not in str(replay) and replay["webhook"]["secret"] is None, replay
        jsonschema.validate(
            replay, documented
        )  # the answer the operation documents, null in the secret's place
        assert replay["webhook"] == {**shown["webhook"], "secret": None}, replay
        note = replay["secretNote"]
        shown_at = re.search(r"shown only in the first answer, at (\S+Z);", note)
        assert shown_at and abs(_instant(shown_at[1]) - _instant(shown["webhook"]["createdAt"])) < timedelta(
            seconds=5
        ), note
    async with store.sessions() as session:  # the table itself, as a database reader sees it
        kept = [str(row) for row in (await session.execute(text("SELECT * FROM idempotency_records"))).all()]
        audited = [str(row) for row in (await session.execute(select(AuditEvent.__table__))).all()]
    assert len(kept) == 1 and "whsec_" not in kept[0] and secret not in kept[0], kept
    assert audited and not any(secret in row or "whsec_" in row for row in audited)
    assert secret not in caplog.text
    # The endpoint still holds the secret it was shown with: the delivery verifies with it.
    [arrived] = hooks.received
    assert Webhook(secret).verify(arrived.body, arrived.headers)["data"]["id"] == course["id"]


async def test_a_write_queues_one_delivery_per_subscribed_enabled_endpoint(store, tenant):
    async with mcp_client(store, tenant.key, services=LOCAL) as client:
        everything = ok(await client.call_tool("create_webhook", {"url": "http://127.0.0.1:9/all"}))[
            "webhook"
        ]
        threads = ok(
            await client.call_tool(
                "create_webhook", {"url": "http://127.0.0.1:9/t", "eventTypes": ["thread.created"]}
            )
        )["webhook"]
        paused = ok(await client.call_tool("create_webhook", {"url": "http://127.0.0.1:9/p"}))["webhook"]
        ok(await client.call_tool("update_webhook", {"webhookId": paused["id"], "enabled": False}))
        await make_course(client)
    async with store.sessions() as session:
        deliveries = (await session.scalars(select(WebhookDelivery))).all()
    assert [(d.endpoint_id, d.sequence, d.state) for d in deliveries] == [(everything["id"], 1, "pending")]
    assert threads["id"] != everything["id"]


async def test_update_rechecks_the_url_and_delete_removes_the_log(store, tenant):
    async with mcp_client(store, tenant.key, services=LOCAL) as client:
        webhook = ok(await client.call_tool("create_webhook", {"url": "http://127.0.0.1:9/hook"}))["webhook"]
        refused = error(
            await client.call_tool(
                "update_webhook", {"webhookId": webhook["id"], "url": "https://10.1.2.3/x"}
            )
        )
        cleared = ok(
            await client.call_tool("update_webhook", {"webhookId": webhook["id"], "description": None})
        )
        null_url = error(await client.call_tool("update_webhook", {"webhookId": webhook["id"], "url": None}))
        await make_course(client)
        deleted = ok(await client.call_tool("delete_webhook", {"webhookId": webhook["id"]}))
        gone = error(await client.call_tool("update_webhook", {"webhookId": webhook["id"], "enabled": True}))
    assert refused["error"] == "unprocessable" and cleared["webhook"]["url"] == "http://127.0.0.1:9/hook"
    assert null_url["error"] == "bad_request" and deleted == {"deleted": True, "id": webhook["id"]}
    assert gone["error"] == "not_found"
    async with store.sessions() as session:
        assert (await session.scalars(select(WebhookDelivery))).all() == []


async def test_another_producers_webhook_is_not_found(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key, services=LOCAL) as client:
        theirs = ok(await client.call_tool("create_webhook", {"url": "http://127.0.0.1:9/hook"}))["webhook"]
    async with mcp_client(store, tenant.key, services=LOCAL) as client:
        for tool, arguments in (("update_webhook", {"enabled": False}), ("delete_webhook", {})):
            assert (
                error(await client.call_tool(tool, {"webhookId": theirs["id"], **arguments}))["error"]
                == "not_found"
            )
        assert ok(await client.call_tool("list_webhooks", {}))["data"] == []


async def test_the_owner_rotates_the_secret_sends_a_test_event_and_reads_the_log(store, tenant):
    app = http_app(store, webhooks_allow_loopback=True)
    async with rest_client(app, tenant.key) as http:
        webhook = (await http.post("/webhooks", json={"url": "http://127.0.0.1:9/hook"})).json()["webhook"]
        # An API key does not rotate secrets or read delivery logs: that is the owner's.
        refused = await http.post(f"/webhooks/{webhook['id']}/rotate-secret")
        assert refused.status_code == 401 and refused.json()["message"] == OWNER_ONLY
        login = await http.post(
            "/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password}
        )
        session = login.json()["session"]["token"]
        owner = {"Authorization": f"Bearer {session}"}
        rotated = (await http.post(f"/webhooks/{webhook['id']}/rotate-secret", headers=owner)).json()[
            "webhook"
        ]
        tested = await http.post(f"/webhooks/{webhook['id']}/test", headers=owner)
        log = (await http.get(f"/webhooks/{webhook['id']}/deliveries", headers=owner)).json()
        feed = (await http.get("/events")).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != webhook["secret"]
    assert tested.status_code == 202 and tested.json()["delivery"]["state"] == "pending"
    assert [delivery["id"] for delivery in log["data"]] == [tested.json()["delivery"]["id"]]
    assert feed["data"] == []  # a test event is not a change to the school


async def test_the_owner_manages_webhooks_on_the_dashboard(store, tenant):

    from tests.support.dashboard import csrf_of, sign_in

    app = http_app(store, webhooks_allow_loopback=True)
    async with rest_client(app, base_url="http://127.0.0.1") as browser:
        assert (await sign_in(browser, tenant.owner_email, tenant.owner_password)).status_code == 303
        page = await browser.get("/dashboard/webhooks")
        refused = await browser.post(
            "/dashboard/webhooks", data={"csrf_token": csrf_of(page), "url": "https://10.0.0.1/x"}
        )
        assert refused.status_code == 400 and "private" in refused.text
        created = await browser.post(
            "/dashboard/webhooks",
            data={
                "csrf_token": csrf_of(page),
                "url": "http://127.0.0.1:9/hook",
                "description": "Bot",
                "event_types": ["thread.created"],
            },
        )
        assert created.status_code == 200
        secret = match_in(
            r'id="new-webhook-secret" class="mono" readonly value="(whsec_[^"]+)"', created.text
        ).group(1)
        webhook_id = match_in(r'data-webhook-id="(wh_[0-9a-f]+)"', created.text).group(1)
        assert secret not in (await browser.get("/dashboard/webhooks")).text
        detail = await browser.get(f"/dashboard/webhooks/{webhook_id}")
        for action in ("test", "disable"):
            done = await browser.post(
                f"/dashboard/webhooks/{webhook_id}/{action}", data={"csrf_token": csrf_of(detail)}
            )
            assert done.status_code == 303 and done.headers["location"].endswith(f"?done={action}")
        detail = await browser.get(f"/dashboard/webhooks/{webhook_id}")
        assert "Disabled" in detail.text and detail.text.count('class="delivery-row pending"') == 1
        rotated = await browser.post(
            f"/dashboard/webhooks/{webhook_id}/rotate", data={"csrf_token": csrf_of(detail)}
        )
        assert "New signing secret" in rotated.text and secret not in rotated.text
        no_csrf = await browser.post(f"/dashboard/webhooks/{webhook_id}/delete", data={"confirm": "yes"})
        assert no_csrf.status_code == 403
        deleted = await browser.post(
            f"/dashboard/webhooks/{webhook_id}/delete", data={"csrf_token": csrf_of(detail)}
        )
        assert deleted.status_code == 303
    async with store.sessions() as session:
        assert (await session.scalars(select(WebhookEndpoint))).all() == []
