"""OAuth 2.1 in process: the metadata documents, the flow, and the negative matrix.

Every refusal is checked for its RFC error code and for what it leaves behind: nothing granted,
or the grant it had to end. The end-to-end flow with real clients is in `test_oauth_e2e.py`.
"""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from storage.tables import AuditEvent, OAuthClient, OAuthGrant, OAuthToken
from tests.support.clock import Clock
from tests.support.dashboard import csrf_of, sign_in
from tests.support.factories import count_rows
from tests.support.mcp_http import mcp_post
from tests.support.oauth import (
    ISSUER,
    REDIRECT,
    RESOURCE,
    Pkce,
    authorize,
    connect,
    consent,
    local_http_server,
    owner_browser,
    query_of,
    refused_at_authorize,
    register,
    server,
    token,
    tools_of,
)


async def oauth_audit(store, producer_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """The security events of connected apps in `producer_id`'s audit log, oldest first:
    (operation, outcome, target ids)."""
    async with store.sessions() as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(
                    col(AuditEvent.producer_id) == producer_id, col(AuditEvent.operation).startswith("oauth_")
                )
                .order_by(col(AuditEvent.occurred_at), col(AuditEvent.id))
            )
        ).all()
    return [(event.operation, event.outcome, event.target_ids) for event in events]


def listed_names(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {tool["name"] for tool in response.json()["result"]["tools"]}


# ---- discovery


async def test_the_protected_resource_and_authorization_server_publish_their_metadata(store):
    async with server(store) as client:
        for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
            resource = (await client.get(path)).json()
            assert resource["resource"] == RESOURCE and resource["authorization_servers"] == [f"{ISSUER}/"]
            assert "courses:read" in resource["scopes_supported"]
        metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == f"{ISSUER}/"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["client_id_metadata_document_supported"] is True
    assert {"authorization_code", "refresh_token"} <= set(metadata["grant_types_supported"])
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
    ):
        assert metadata[endpoint].startswith(ISSUER)


async def test_a_401_from_mcp_names_the_resource_metadata(store):
    async with server(store) as client:
        missing = await mcp_post(client, None)
        wrong = await mcp_post(client, "blo_not-a-token")
    assert missing.status_code == wrong.status_code == 401
    expected = f'resource_metadata="{ISSUER}/.well-known/oauth-protected-resource/mcp"'
    assert expected in missing.headers["www-authenticate"]
    assert (
        expected in wrong.headers["www-authenticate"]
        and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    )


async def test_without_an_https_public_url_oauth_is_off_and_api_keys_work(store, tenant):
    async with server(store, public_url="http://school.example.com") as client:
        assert (await client.get("/.well-known/oauth-authorization-server")).status_code == 404
        assert "resource_metadata" not in (await mcp_post(client, None)).headers["www-authenticate"]
        assert (await mcp_post(client, tenant.key)).status_code == 200


# ---- the flow


async def test_a_connected_app_sees_exactly_the_granted_tools_and_its_calls_are_audited(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        _, issued = await connect(client, browser, permissions=["courses:read", "students:write"])
        assert issued["token_type"] == "Bearer" and issued["expires_in"] == 3600
        assert issued["scope"] == "courses:read students:write"
        assert listed_names(await mcp_post(client, issued["access_token"])) == tools_of(
            ["courses:read", "students:write"]
        )
        called = await mcp_post(
            client,
            issued["access_token"],
            "tools/call",
            {"name": "register_student", "arguments": {"name": "Ada", "email": "ada@example.com"}},
        )
        assert called.status_code == 200 and not called.json()["result"].get("isError"), called.text
        refused = await mcp_post(
            client, issued["access_token"], "tools/call", {"name": "create_course", "arguments": {}}
        )
        assert "Unknown tool" in refused.text
        # An OAuth token is for the MCP endpoint it was issued for, not for REST.
        rest = await client.get(
            "/api/v1/courses", headers={"Authorization": f"Bearer {issued['access_token']}"}
        )
        assert rest.status_code == 401
    async with store.sessions() as session:
        grant = (await session.scalars(select(OAuthGrant))).one()
        events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.producer_id == tenant.producer_id))
        ).all()
        stored = (await session.scalars(select(col(OAuthToken.token_hash)))).all()
    assert (
        grant.producer_id == tenant.producer_id
        and grant.client_name == "Test Agent"
        and grant.last_used_at is not None
    )
    by_operation = {event.operation: event for event in events}
    assert by_operation["answer_app_authorization"].target_ids == {
        "clientId": grant.client_id,
        "grantId": grant.id,
    }
    assert (
        by_operation["register_student"].key_id == grant.id
        and by_operation["register_student"].key_name == "Test Agent"
    )
    # The code exchange is audited as the app's own, like its calls.
    issued_event = by_operation["oauth_issue_tokens"]
    assert (issued_event.outcome, issued_event.target_ids) == ("ok", {"grantId": grant.id})
    assert issued_event.key_id == grant.id and issued_event.key_name == "Test Agent"
    assert issued["access_token"] not in stored and issued["refresh_token"] not in stored  # only hashes


async def test_the_consent_page_needs_sign_in_and_returns_to_the_request(store, tenant):
    async with server(store) as client:
        client_id = (await register(client)).json()["client_id"]
        started = await authorize(client, client_id, Pkce.new(), scope="courses:read")
        consent_path = started.headers["location"].removeprefix(ISSUER)
        page = await client.get(consent_path)
        assert page.status_code == 303 and page.headers["location"].startswith("/dashboard/sign-in?next=")
        signed = await sign_in(client, tenant.owner_email, tenant.owner_password)
        # The sign-in form carries `next` through: after sign-in the browser is back on the consent page.
        form_page = await client.get(page.headers["location"])
        assert (
            'name="next" value="/dashboard/authorize?' in form_page.text.replace("&amp;", "&")
            or signed.status_code == 303
        )
        shown = await client.get(consent_path)
    assert shown.status_code == 200 and "Test Agent" in shown.text and "127.0.0.1:9999" in shown.text
    assert 'value="courses:read" checked' in shown.text and 'value="courses:write" checked' not in shown.text
    assert "form-action 'self' http://127.0.0.1:9999" in shown.headers["content-security-policy"]


async def test_deny_sends_access_denied_and_grants_nothing(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client)).json()["client_id"]
        started = await authorize(client, client_id, Pkce.new(), scope="courses:read")
        answered = await consent(browser, started.headers["location"], decision="deny")
    assert answered.status_code == 303
    assert query_of(answered.headers["location"]) == {
        "error": "access_denied",
        "error_description": "The owner denied access",
        "state": "st-1",
    }
    assert await count_rows(store, OAuthGrant) == 0


async def test_refresh_rotates_and_reusing_an_old_refresh_token_revokes_the_family(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id, first = await connect(client, browser)
        second = await token(
            client, grant_type="refresh_token", refresh_token=first["refresh_token"], client_id=client_id
        )
        assert second.status_code == 200, second.text
        second = second.json()
        assert (
            second["refresh_token"] != first["refresh_token"]
            and second["access_token"] != first["access_token"]
        )
        assert (await mcp_post(client, second["access_token"])).status_code == 200
        replayed = await token(
            client, grant_type="refresh_token", refresh_token=first["refresh_token"], client_id=client_id
        )
        assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
        # The whole family is gone: the newest pair too.
        assert (await mcp_post(client, second["access_token"])).status_code == 401
        again = await token(
            client, grant_type="refresh_token", refresh_token=second["refresh_token"], client_id=client_id
        )
        assert again.json()["error"] == "invalid_grant"
    async with store.sessions() as session:
        grant = (await session.scalars(select(OAuthGrant))).one()
    assert grant.revoked_at is not None
    assert await oauth_audit(store, tenant.producer_id) == [
        ("oauth_issue_tokens", "ok", {"grantId": grant.id}),
        ("oauth_refresh_tokens", "ok", {"grantId": grant.id}),
        ("oauth_revoke_grant_reused_refresh_token", "ok", {"grantId": grant.id}),
    ]


# ---- the negative matrix


async def test_a_wrong_pkce_verifier_is_invalid_grant_and_issues_nothing(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client)).json()["client_id"]
        started = await authorize(client, client_id, Pkce.new(), scope="courses:read")
        code = query_of((await consent(browser, started.headers["location"])).headers["location"])["code"]
        refused = await token(
            client,
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT,
            client_id=client_id,
            code_verifier=Pkce.new().verifier,
        )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert await count_rows(store, OAuthToken) == 0


async def test_a_reused_code_is_invalid_grant_and_revokes_what_the_first_use_got(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client)).json()["client_id"]
        pkce = Pkce.new()
        started = await authorize(client, client_id, pkce, scope="courses:read")
        code = query_of((await consent(browser, started.headers["location"])).headers["location"])["code"]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": pkce.verifier,
        }
        first = await token(client, **exchange)
        assert first.status_code == 200
        second = await token(client, **exchange)
        assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
        assert (await mcp_post(client, first.json()["access_token"])).status_code == 401
    assert [(name, outcome) for name, outcome, _ in await oauth_audit(store, tenant.producer_id)] == [
        ("oauth_issue_tokens", "ok"),
        ("oauth_revoke_grant_reused_code", "ok"),
    ]


async def test_a_code_for_another_client_is_invalid_grant(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client)).json()["client_id"]
        other_id = (await register(client, client_name="Other")).json()["client_id"]
        pkce = Pkce.new()
        started = await authorize(client, client_id, pkce, scope="courses:read")
        code = query_of((await consent(browser, started.headers["location"])).headers["location"])["code"]
        refused = await token(
            client,
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT,
            client_id=other_id,
            code_verifier=pkce.verifier,
        )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert await count_rows(store, OAuthToken) == 0


async def test_a_redirect_uri_mismatch_is_refused_without_redirecting(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client)).json()["client_id"]
        at_authorize = await authorize(
            client, client_id, Pkce.new(), redirect_uri="http://127.0.0.1:9999/elsewhere"
        )
        assert refused_at_authorize(at_authorize)[0] == "invalid_request"
        # Edited on its way through the consent form: checked again.
        started = await authorize(client, client_id, Pkce.new(), scope="courses:read")
        tampered = started.headers["location"].replace("callback", "stolen")
        page = await browser.get(tampered.removeprefix(ISSUER))
        assert page.status_code == 400 and "not registered" in page.text
        # At the token endpoint: the redirect URI must be the authorization request's.
        pkce = Pkce.new()
        started = await authorize(client, client_id, pkce, scope="courses:read")
        code = query_of((await consent(browser, started.headers["location"])).headers["location"])["code"]
        refused = await token(
            client,
            grant_type="authorization_code",
            code=code,
            redirect_uri="http://127.0.0.1:9999/other",
            client_id=client_id,
            code_verifier=pkce.verifier,
        )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    assert await count_rows(store, OAuthToken) == 0


async def test_registration_refuses_redirect_uris_that_are_neither_https_nor_loopback(store):
    async with server(store) as client:
        refused = await register(client, redirect_uris=["http://attacker.example.com/cb"])
        fragment = await register(client, redirect_uris=["https://app.example.com/cb#x"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_redirect_uri"
    assert fragment.status_code == 400
    assert await count_rows(store, OAuthClient) == 0


async def test_an_expired_access_token_is_refused(store, tenant):
    clock = Clock.at_present()
    async with server(store, clock=clock) as client, owner_browser(client, tenant) as browser:
        _, issued = await connect(client, browser)
        assert (await mcp_post(client, issued["access_token"])).status_code == 200
        clock.now += timedelta(hours=1, seconds=1)
        expired = await mcp_post(client, issued["access_token"])
    assert expired.status_code == 401 and "expired" in expired.json()["message"]


async def test_a_token_for_another_resource_is_refused(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client)).json()["client_id"]
        elsewhere = await authorize(client, client_id, Pkce.new(), resource="https://other.example.com/mcp")
        assert (
            refused_at_authorize(elsewhere)[0] == "invalid_target"
        )  # a page: not sent to the app before consent
        _, issued = await connect(client, browser)
    # The same database served under another public URL: the token's audience is not this resource.
    async with server(store, public_url="https://school.example.com") as other:
        refused = await mcp_post(other, issued["access_token"])
    assert refused.status_code == 401 and "another resource" in refused.json()["message"]


async def test_a_consent_posted_without_the_csrf_token_is_refused_and_grants_nothing(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client)).json()["client_id"]
        started = await authorize(client, client_id, Pkce.new(), scope="courses:read")
        refused = await consent(browser, started.headers["location"], csrf=False)
    assert refused.status_code == 403
    assert await count_rows(store, OAuthGrant) == 0


async def test_another_producers_app_cannot_be_disconnected_or_seen(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with server(store) as client, owner_browser(client, tenant) as browser:
        _, issued = await connect(client, browser)
        async with store.sessions() as session:
            grant_id = (await session.scalars(select(col(OAuthGrant.id)))).one()
        async with owner_browser(client, other) as intruder:
            page = await intruder.get("/dashboard/apps")
            assert grant_id not in page.text
            csrf = csrf_of(page)
            refused = await intruder.post(
                "/dashboard/apps/disconnect", data={"csrf_token": csrf, "id": grant_id}
            )
        assert refused.status_code == 404
        assert (await mcp_post(client, issued["access_token"])).status_code == 200


async def test_disconnecting_ends_the_apps_tokens_at_once(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id, issued = await connect(client, browser)
        page = await browser.get("/dashboard/apps")
        assert "Test Agent" in page.text
        async with store.sessions() as session:
            grant_id = (await session.scalars(select(col(OAuthGrant.id)))).one()
        csrf = csrf_of(page)
        done = await browser.post("/dashboard/apps/disconnect", data={"csrf_token": csrf, "id": grant_id})
        assert done.status_code == 303
        assert (await mcp_post(client, issued["access_token"])).status_code == 401
        refreshed = await token(
            client, grant_type="refresh_token", refresh_token=issued["refresh_token"], client_id=client_id
        )
        assert refreshed.json()["error"] == "invalid_grant"


async def test_the_revocation_endpoint_ends_the_grant(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id, issued = await connect(client, browser)
        revoked = await client.post("/revoke", data={"token": issued["access_token"], "client_id": client_id})
        assert revoked.status_code == 200
        assert (await mcp_post(client, issued["access_token"])).status_code == 401
    assert [(name, outcome) for name, outcome, _ in await oauth_audit(store, tenant.producer_id)] == [
        ("oauth_issue_tokens", "ok"),
        ("oauth_revoke_grant", "ok"),
    ]


async def test_a_confidential_clients_secret_is_stored_hashed_and_checked(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        registered = (await register(client, token_endpoint_auth_method="client_secret_post")).json()
        client_id, secret = registered["client_id"], registered["client_secret"]
        pkce = Pkce.new()
        started = await authorize(client, client_id, pkce, scope="courses:read")
        code = query_of((await consent(browser, started.headers["location"])).headers["location"])["code"]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": pkce.verifier,
        }
        wrong = await token(client, **exchange, client_secret="not-the-secret")
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        right = await token(client, **exchange, client_secret=secret)
        assert right.status_code == 200, right.text
    async with store.sessions() as session:
        stored = await session.get(OAuthClient, client_id)
    assert (
        stored.secret_hash and secret not in json.dumps(stored.information) and stored.secret_hash != secret
    )


# ---- client ID metadata documents


async def test_a_client_id_metadata_document_client_connects(store, tenant):
    documents: dict[str, dict] = {}
    with local_http_server(documents) as base:
        client_id = f"{base}/oauth/client.json"
        documents["/oauth/client.json"] = {
            "client_id": client_id,
            "client_name": "Doc Agent",
            "redirect_uris": [REDIRECT],
        }
        async with (
            server(store, oauth_allow_loopback_metadata=True) as client,
            owner_browser(client, tenant) as browser,
        ):
            pkce = Pkce.new()
            started = await authorize(client, client_id, pkce, scope="courses:read")
            assert started.status_code == 302, started.text
            answered = await consent(browser, started.headers["location"])
            code = query_of(answered.headers["location"])["code"]
            issued = await token(
                client,
                grant_type="authorization_code",
                code=code,
                redirect_uri=REDIRECT,
                client_id=client_id,
                code_verifier=pkce.verifier,
            )
            assert issued.status_code == 200, issued.text
            assert listed_names(await mcp_post(client, issued.json()["access_token"])) == tools_of(
                ["courses:read"]
            )
    async with store.sessions() as session:
        stored = await session.get(OAuthClient, client_id)
    assert stored.source == "metadata_document" and stored.name == "Doc Agent"


async def test_metadata_documents_on_loopback_are_refused_unless_allowed(store):
    documents: dict[str, dict] = {}
    with local_http_server(documents) as base:
        client_id = f"{base}/oauth/client.json"
        documents["/oauth/client.json"] = {
            "client_id": client_id,
            "client_name": "Doc Agent",
            "redirect_uris": [REDIRECT],
        }
        documents["/oauth/liar.json"] = {
            "client_id": "https://someone-else.example.com/c.json",
            "redirect_uris": [REDIRECT],
        }
        async with server(store) as client:
            refused = await authorize(client, client_id, Pkce.new())
        async with server(store, oauth_allow_loopback_metadata=True) as client:
            liar = await authorize(client, f"{base}/oauth/liar.json", Pkce.new())
            missing = await authorize(client, f"{base}/oauth/none.json", Pkce.new())
    for response in (refused, liar, missing):
        assert refused_at_authorize(response)[0] == "invalid_request"
    assert await count_rows(store, OAuthClient) == 0


async def test_metadata_documents_are_fetched_narrowly_and_cached(store, tenant):
    requested: list[str] = []
    documents: dict = {}
    clock = Clock.at_present()
    with local_http_server(documents, requested) as base:
        client_id = f"{base}/oauth/client.json"
        documents["/oauth/client.json"] = {
            "client_id": client_id,
            "client_name": "Doc Agent",
            "redirect_uris": [REDIRECT],
        }
        documents["/oauth/big.json"] = b'{"client_id": "x", "padding": "' + b"x" * 6000 + b'"}'
        documents["/oauth/moved.json"] = ("redirect", f"{base}/oauth/client.json")
        documents["/oauth/secret.json"] = {
            "client_id": f"{base}/oauth/secret.json",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_post",
        }
        async with server(store, clock=clock, oauth_allow_loopback_metadata=True) as client:
            for refused in ("big", "moved", "secret"):
                response = await authorize(client, f"{base}/oauth/{refused}.json", Pkce.new())
                assert response.status_code == 400, refused
            assert requested.count("/oauth/client.json") == 0  # the redirect was not followed
            for _ in range(2):
                assert (await authorize(client, client_id, Pkce.new())).status_code == 302
            assert requested.count("/oauth/client.json") == 1  # cached
            clock.now += timedelta(hours=1)
            assert (await authorize(client, client_id, Pkce.new())).status_code == 302
            assert requested.count("/oauth/client.json") == 2  # fetched again once the copy is an hour old


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/client.json",  # private
        "https://169.254.169.254/latest/meta-data",  # link-local: the cloud metadata address
        "https://127.0.0.1/client.json",  # loopback, not allowed by default
        "http://app.example.com/client.json",  # not https
        "https://app.example.com/",  # no path
        "https://user:pass@app.example.com/client.json",  # credentials
    ],
)
async def test_client_id_urls_are_refused_before_any_request(url):
    from server.oauth.client_documents import DocumentRefused, fetch_client_document

    with pytest.raises(DocumentRefused):
        await fetch_client_document(url, allow_loopback=False, scopes="courses:read")


async def test_a_disconnect_in_one_process_is_refused_by_another_at_once(store, tenant):
    """Two HTTP apps over one database stand for two server processes behind a load balancer."""
    async with server(store) as first, server(store) as second, owner_browser(first, tenant) as browser:
        _, issued = await connect(first, browser)
        assert (await mcp_post(second, issued["access_token"])).status_code == 200
        async with store.sessions() as session:
            grant_id = (await session.scalars(select(col(OAuthGrant.id)))).one()
        page = await browser.get("/dashboard/apps")
        csrf = csrf_of(page)
        assert (
            await browser.post("/dashboard/apps/disconnect", data={"csrf_token": csrf, "id": grant_id})
        ).status_code == 303
        assert (await mcp_post(second, issued["access_token"])).status_code == 401
