"""The Producer Dashboard in process: sessions, CSRF, headers, tenancy, and each page's operation."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlmodel import col

from server.auth import SESSION_COOKIE
from storage.tables import ApiKey, AuditEvent
from tests.support.dashboard import BASE, csrf_of, dashboard, sign_in, signed_in
from tests.support.factories import add_key, mcp_client, ok
from tests.support.rest import http_app, rest_client, seed
from tests.support.text import match_in

PAGES = ["/dashboard", "/dashboard/keys", "/dashboard/connect", "/dashboard/activity", "/dashboard/account"]


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_without_a_session_redirects_to_sign_in(store, path):
    async with dashboard(store) as client:
        response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dashboard/sign-in")


async def test_the_root_leads_to_the_dashboard(store):
    async with dashboard(store) as client:
        response = await client.get("/")
    assert response.status_code == 307 and response.headers["location"] == "/dashboard"


async def test_sign_in_sets_one_http_only_session_cookie_for_the_whole_site(store, tenant):
    async with dashboard(store) as client:
        response = await sign_in(client, tenant.owner_email, tenant.owner_password)
    cookie = next(
        value for value in response.headers.get_list("set-cookie") if value.startswith(f"{SESSION_COOKIE}=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes


async def test_a_wrong_password_and_an_unknown_email_fail_alike(store, tenant):
    async with dashboard(store) as client:
        wrong_password = await sign_in(client, tenant.owner_email, "not-the-password")
        unknown_email = await sign_in(client, "nobody@example.com", tenant.owner_password)
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert "Invalid email or password." in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_sign_in_without_its_csrf_token_is_refused(store, tenant):
    async with dashboard(store) as client:
        await client.get("/dashboard/sign-in")
        response = await client.post(
            "/dashboard/sign-in", data={"email": tenant.owner_email, "password": tenant.owner_password}
        )
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_a_form_post_without_the_csrf_token_is_refused(store, tenant):
    async with signed_in(store, tenant) as client:
        missing = await client.post("/dashboard/keys", data={"name": "Sneaky", "permissions": "*"})
        forged = await client.post(
            "/dashboard/keys", data={"name": "Sneaky", "permissions": "*", "csrf_token": "0" * 64}
        )
    assert missing.status_code == 403 and forged.status_code == 403
    async with store.sessions() as session:
        names = (
            await session.scalars(
                select(col(ApiKey.name)).where(col(ApiKey.producer_id) == tenant.producer_id)
            )
        ).all()
    assert "Sneaky" not in names


async def test_another_producers_csrf_token_does_not_pass(store, tenant, tenant_factory):
    other = await tenant_factory("Other Academy")
    async with signed_in(store, other) as client:
        others_token = csrf_of(await client.get("/dashboard/keys"))
    async with signed_in(store, tenant) as client:
        response = await client.post(
            "/dashboard/keys", data={"name": "X", "permissions": "*", "csrf_token": others_token}
        )
    assert response.status_code == 403


async def test_another_producers_key_id_in_a_revoke_form_is_not_found(store, tenant, tenant_factory):
    other = await tenant_factory("Other Academy")
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/keys"))
        response = await client.post("/dashboard/keys/revoke", data={"id": other.key_id, "csrf_token": token})
    assert response.status_code == 404
    assert "API key not found" in response.text
    async with store.sessions() as session:
        assert (await session.get(ApiKey, other.key_id)).revoked_at is None


@pytest.mark.parametrize("path", ["/dashboard/sign-in", *PAGES])
async def test_every_page_refuses_to_be_framed_and_runs_no_inline_code(store, tenant, path):
    async with signed_in(store, tenant) as client:
        if path.endswith("sign-in"):
            client.cookies.clear()
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"
    assert not re.search(r"<script(?![^>]*\bsrc=)", response.text) and " style=" not in response.text
    assert not re.search(r"\son[a-z]+=", response.text)


async def test_a_new_key_is_shown_once_and_never_listed(store, tenant):
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/keys"))
        created = await client.post(
            "/dashboard/keys",
            data={
                "name": "Course reader",
                "permissions": "courses:read",
                "expires_in_days": "30",
                "csrf_token": token,
            },
        )
        secret = match_in(r'value="(blk_[^"]+)"', created.text).group(1)
        listed = await client.get("/dashboard/keys")
    assert created.status_code == 200 and "shown only once" in created.text
    assert secret not in listed.text and "Course reader" in listed.text
    # The six course read tools, whoami and parse_video: what the key's tools/list shows.
    assert re.search(r"Course reader.*?<td class=\"num\"[^>]*>8</td>", listed.text, re.DOTALL)
    async with mcp_client(store, secret) as mcp:
        assert len((await mcp.list_tools()).tools) == 8
    async with store.sessions() as session:
        events = (
            await session.scalars(select(AuditEvent).where(col(AuditEvent.operation) == "create_api_key"))
        ).all()
    assert [event.key_name for event in events] == ["owner session"]
    assert secret not in repr([event.target_ids for event in events])


async def test_a_key_form_with_no_permission_says_so_and_keeps_the_name(store, tenant):
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/keys"))
        response = await client.post("/dashboard/keys", data={"name": "Half done", "csrf_token": token})
    assert response.status_code == 400
    assert "choose at least one permission" in response.text and 'value="Half done"' in response.text


async def test_revoking_in_the_page_stops_the_key(store, tenant):
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/keys"))
        response = await client.post(
            "/dashboard/keys/revoke", data={"id": tenant.key_id, "csrf_token": token}
        )
        assert response.status_code == 303
        page = await client.get(response.headers["location"])
    assert "was revoked" in page.text
    async with store.sessions() as session:
        assert (await session.get(ApiKey, tenant.key_id)).revoked_at is not None


async def test_the_overview_counts_the_school(store, tenant):
    world = (await seed(store, tenant)).ids
    async with mcp_client(store, tenant.key) as mcp:
        ok(
            await mcp.call_tool(
                "update_progress",
                {"enrollmentId": world["enrollmentId"], "lessonId": world["lessonId"], "completed": True},
            )
        )
    async with signed_in(store, tenant) as client:
        page = await client.get("/dashboard")
    assert page.status_code == 200
    stats = dict(re.findall(r"<dt>(?:<a [^>]+>)?([^<]+)(?:</a>)?</dt><dd>(\d+)</dd>", page.text))
    assert stats == {
        "Students": "2",
        "Published courses": "1",
        "Draft courses": "0",
        "Active enrollments": "0",
        "Certificates": "1",
        "Communities": "1",
    }
    assert "1 lesson completed" in page.text and "<svg" in page.text and "100%" in page.text


async def test_the_activity_page_filters_by_outcome(store, tenant, tenant_factory):
    other = await tenant_factory("Other Academy")
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/keys"))
        await client.post("/dashboard/keys/revoke", data={"id": other.key_id, "csrf_token": token})
        failed = await client.get("/dashboard/activity", params={"outcome": "not_found"})
        succeeded = await client.get("/dashboard/activity", params={"outcome": "ok", "operation": "login"})
        bad_date = await client.get("/dashboard/activity", params={"since": "yesterday"})
    assert (
        failed.status_code == 200
        and "revoke_api_key" in failed.text
        and "<code>login</code>" not in failed.text
    )
    assert (
        "<code>login</code>" in succeeded.text and "revoke_api_key" not in succeeded.text.split("<table")[1]
    )
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.text


async def test_a_page_or_expiry_of_thousands_of_digits_is_no_server_error(store, tenant):
    huge = "9" * 5_000  # past the 4300 digits `int` reads
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/keys"))
        activity = await client.get("/dashboard/activity", params={"page": huge})
        key = await client.post(
            "/dashboard/keys",
            data={"name": "Huge", "permissions": ["*"], "expires_in_days": huge, "csrf_token": token},
        )
    assert activity.status_code == 200
    assert key.status_code == 400 and "choose an expiry" in key.text


async def test_changing_the_password_ends_the_other_sessions(store, tenant):
    async with signed_in(store, tenant) as other, signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/account"))
        wrong = await client.post(
            "/dashboard/account",
            data={
                "current_password": "wrong-password",
                "new_password": "a-new-password",
                "confirm_password": "a-new-password",
                "csrf_token": token,
            },
        )
        changed = await client.post(
            "/dashboard/account",
            data={
                "current_password": tenant.owner_password,
                "new_password": "a-new-password",
                "confirm_password": "a-new-password",
                "csrf_token": token,
            },
        )
        still_here = await client.get("/dashboard/account")
        signed_out = await other.get("/dashboard")
    assert wrong.status_code == 400 and "not the current password" in wrong.text
    assert changed.status_code == 200 and "1 other session signed out" in changed.text
    assert still_here.status_code == 200
    assert signed_out.status_code == 303
    async with dashboard(store) as client:
        assert (await sign_in(client, tenant.owner_email, tenant.owner_password)).status_code == 401
        assert (await sign_in(client, tenant.owner_email, "a-new-password")).status_code == 303


async def test_sign_out_ends_the_session(store, tenant):
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard"))
        cookie = client.cookies[SESSION_COOKIE]
        response = await client.post("/dashboard/sign-out", data={"csrf_token": token})
        assert (
            response.status_code == 303 and response.headers["location"] == "/dashboard/sign-in?signed_out=1"
        )
    async with dashboard(store) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        assert (await client.get("/dashboard")).status_code == 303


async def test_a_cross_site_form_post_is_refused_before_the_page(store, tenant):
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/keys"))
        response = await client.post(
            "/dashboard/keys",
            data={"name": "X", "permissions": "*", "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
    assert response.status_code == 403


async def test_the_connect_page_shows_configs_for_this_server_with_a_placeholder(store, tenant):
    async with signed_in(store, tenant) as client:
        page = await client.get("/dashboard/connect", headers={"Host": "localhost:8123"})
    assert page.status_code == 200
    # The default public URL (http://127.0.0.1:<port>), not the Host the request named.
    assert (
        "http://127.0.0.1:8000/mcp" in page.text
        and "localhost:8123" not in page.text
        and "blk_..." in page.text
    )
    for client_name in ("Claude Code", "Claude Desktop", "Cursor", "VS Code", "Any streamable-HTTP client"):
        assert client_name in page.text


async def test_the_bundle_is_offered_when_packed(store, tenant, tmp_path):
    bundle = tmp_path / "blohko.mcpb"
    bundle.write_bytes(b"PK\x03\x04 bundle")
    app = http_app(store, mcpb_path=bundle)
    async with rest_client(app, base_url=BASE) as client:
        await sign_in(client, tenant.owner_email, tenant.owner_password)
        page = await client.get("/dashboard/connect")
        download = await client.get("/dashboard/connect/blohko.mcpb")
    assert "Download blohko.mcpb" in page.text
    assert download.status_code == 200 and download.content == bundle.read_bytes()
    assert "blohko.mcpb" in download.headers["content-disposition"]


async def test_a_key_with_audit_read_reads_the_log_over_mcp_and_a_session_over_the_page(store, tenant):
    key = await add_key(store, tenant, ["audit:read"])
    async with mcp_client(store, key) as mcp:
        listed = ok(await mcp.call_tool("list_audit_events", {"outcome": "ok"}))
    assert all(event["outcome"] == "ok" for event in listed["data"])
