"""Attacks on the OAuth endpoints of `blohko serve --http`, each replayed and refused:

- `/register` cannot fill the disk: bounded metadata, a rate limit, unconsented clients cleaned up.
- `/revoke` serves the public and `client_secret_basic` clients that use it, and the token ends.
- `/authorize` redirects no error before the consent page to a URI a self-registered client
  named: it is no open redirector.
- A redirect URI with userinfo (`https://claude.ai@evil.example/cb`) does not register, so no
  consent page says the answer goes to "claude.ai@evil.example".
- `/token` honours `resource`: a code or refresh token is exchanged for its own resource only.

In process over the ASGI app (httpx's ASGITransport), on a real database of the run's engine.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlmodel import col

from server.oauth.redirects import redirect_uri_problem
from storage.tables import OAuthClient, OAuthGrant
from tests.support.clock import Clock
from tests.support.dashboard import BASE
from tests.support.databases import sqlite_path
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
)
from tests.support.rest import http_app
from tools.domains.oauth import (
    MAX_CLIENT_METADATA_BYTES,
    MAX_CONTACTS,
    MAX_METADATA_STRING_LENGTH,
    MAX_REDIRECT_URI_LENGTH,
    MAX_REDIRECT_URIS,
    save_client,
)

EVIL = "https://evil.example/mcp"


# ---- 1. registration: bounded in size, rate and time


@asynccontextmanager
async def addressed_app(store, *, clock=None, **settings) -> AsyncIterator:
    """The HTTP app (lifespan running) and `client_from(address)`: a client of it whose requests
    come from `address` (the ASGI client, as uvicorn sets it), closed when the app stops."""
    app = http_app(store, **({"clock": clock} if clock else {}), **settings)
    clients: dict[str, httpx.AsyncClient] = {}

    def client_from(address: str) -> httpx.AsyncClient:
        if address not in clients:
            clients[address] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url=BASE
            )
        return clients[address]

    async with app.router.lifespan_context(app):
        try:
            yield client_from
        finally:
            for client in clients.values():
                await client.aclose()


def _largest_allowed_metadata() -> dict[str, Any]:
    """Registration metadata at every bound at once: as much as one registration may store."""
    base = "https://app.example.com/callback/"
    uri_length = (MAX_CLIENT_METADATA_BYTES - 800) // MAX_REDIRECT_URIS - 4
    return {
        "client_name": "F" * MAX_METADATA_STRING_LENGTH,
        "redirect_uris": [
            f"{base}{index}{'a' * (uri_length - len(base) - 1)}" for index in range(MAX_REDIRECT_URIS)
        ],
        "token_endpoint_auth_method": "none",
    }


async def _database_bytes(store) -> int:
    """The database's size: the SQLite file with its WAL (and shared-memory index), or PostgreSQL's database size."""
    if store.is_sqlite:
        path = Path(sqlite_path(store.url))
        return sum(
            part.stat().st_size for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if part.exists()
        )
    async with store.sessions() as session:
        return (await session.execute(text("SELECT pg_database_size(current_database())"))).scalar_one()


async def test_a_flood_of_2000_registrations_grows_the_database_by_less_than_5_mb_and_later_ones_get_429(
    store,
):
    metadata = _largest_allowed_metadata()
    assert (
        0.8 * MAX_CLIENT_METADATA_BYTES < len(json.dumps(metadata)) < MAX_CLIENT_METADATA_BYTES
    )  # each one near the bound
    before = await _database_bytes(store)
    statuses: list[int] = []
    retry_after: set[str] = set()
    async with addressed_app(store) as client_from:
        # Round robin over 250 addresses, 8 each: under the per-address limit, so the total limit stops them.
        for index in range(2000):
            response = await client_from(f"198.51.{index % 250 // 100}.{index % 250 % 100 + 1}").post(
                "/register", json=metadata
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                retry_after.add(response.headers["retry-after"])
                assert response.json()["error"] == "rate_limited"
    grown = await _database_bytes(store) - before
    assert statuses[:100] == [201] * 100  # the default total: 100 registrations an hour
    assert statuses[100:] == [429] * 1900
    assert all(1 <= int(seconds) <= 3600 for seconds in retry_after)
    assert await count_rows(store, OAuthClient) == 100
    assert grown < 5 * 1024 * 1024, f"the database grew by {grown} bytes"


async def test_registrations_are_limited_per_address_across_server_processes_and_the_limit_ends_with_the_hour(
    store,
):
    clock = Clock.at_present()
    async with addressed_app(store, clock=clock) as first, addressed_app(store, clock=clock) as second:
        # Two apps over one database stand for two server processes: the count is the database's.
        one, same_elsewhere, other = first("203.0.113.7"), second("203.0.113.7"), first("203.0.113.8")
        for index in range(20):
            assert (await register(one if index % 2 else same_elsewhere)).status_code == 201
        refused = await register(one)
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
        assert 0 < int(refused.headers["retry-after"]) <= 3600
        assert (await register(same_elsewhere)).status_code == 429
        assert (await register(other)).status_code == 201  # another address has its own budget
        clock.now += timedelta(hours=1, seconds=1)
        assert (await register(one)).status_code == 201
    assert await count_rows(store, OAuthClient) == 22


async def test_oversized_registration_metadata_is_refused_and_nothing_is_stored(store):
    snowmen = (
        "\u2603" * MAX_METADATA_STRING_LENGTH
    )  # 900 bytes in the body, 1,800 as the JSON column keeps it
    cases = {
        "contacts of 3.9 MB": ({"contacts": ["x" * 3_900_000]}, 413, None),
        "5,000 redirect URIs": (
            {"redirect_uris": [f"https://app.example.com/cb/{index}" for index in range(5000)]},
            413,
            None,
        ),
        "11 redirect URIs": (
            {"redirect_uris": [f"https://a.example/{index}" for index in range(MAX_REDIRECT_URIS + 1)]},
            400,
            "redirect_uris: at most 10",
        ),
        "a long redirect URI": (
            {"redirect_uris": ["https://a.example/" + "a" * MAX_REDIRECT_URI_LENGTH]},
            400,
            "redirect URI is at most 1000 characters",
        ),
        "six contacts": (
            {"contacts": [f"{index}@example.com" for index in range(MAX_CONTACTS + 1)]},
            400,
            "contacts: at most 5",
        ),
        "a long name": (
            {"client_name": "n" * (MAX_METADATA_STRING_LENGTH + 1)},
            400,
            "client_name: at most 300 characters",
        ),
        "a long logo URI": (
            {"logo_uri": "https://app.example.com/" + "l" * MAX_METADATA_STRING_LENGTH},
            400,
            "logo_uri: at most 300",
        ),
        "escapes past 4 KiB": ({"contacts": [snowmen] * 3}, 400, "bytes serialized; at most 4096"),
        "another grant type": (
            {"grant_types": ["authorization_code", "client_credentials"]},
            400,
            "not client_credentials",
        ),
    }
    async with server(store) as client:
        for case, (metadata, status, problem) in cases.items():
            response = await register(client, **metadata)
            assert response.status_code == status, (case, response.text[:300])
            if problem:
                assert (
                    response.json()["error"] == "invalid_client_metadata"
                    and problem in response.json()["error_description"]
                ), case
            assert len(response.content) < 1000, case  # nothing echoed back
    assert await count_rows(store, OAuthClient) == 0


async def test_registrations_no_owner_consented_to_are_deleted_after_a_day(store, tenant):
    clock = Clock.at_present()
    async with server(store, clock=clock) as client, owner_browser(client, tenant) as browser:
        unused = (await register(client, client_name="Never used")).json()["client_id"]
        consented, _ = await connect(client, browser)
        clock.now += timedelta(hours=23)
        await register(client, client_name="Within the day")
        assert await count_rows(store, OAuthClient) == 3  # nothing is a day old yet
        clock.now += timedelta(hours=1, seconds=1)
        await register(client, client_name="The next day")
        async with store.sessions() as session:
            left = set((await session.scalars(select(col(OAuthClient.id)))).all())
        assert unused not in left and consented in left and len(left) == 3
        # The deleted client is unknown now: /authorize says so on a page and the app registers again.
        assert refused_at_authorize(await authorize(client, unused, Pkce.new()))[0] == "invalid_request"


async def test_fetched_metadata_documents_no_owner_consented_to_are_forgotten_after_their_cache_hour(
    store, tenant
):
    """Anyone can make `/authorize` fetch a new document URL: without cleanup each one would stay
    stored. A copy an hour old is fetched again before use anyway, so an unused one is deleted."""
    documents: dict[str, dict] = {}
    clock = Clock.at_present()
    with local_http_server(documents) as base:
        for name in ("used", "unused"):
            documents[f"/oauth/{name}.json"] = {
                "client_id": f"{base}/oauth/{name}.json",
                "client_name": name,
                "redirect_uris": [REDIRECT],
            }
        used, unused = f"{base}/oauth/used.json", f"{base}/oauth/unused.json"
        async with (
            server(store, clock=clock, oauth_allow_loopback_metadata=True) as client,
            owner_browser(client, tenant) as browser,
        ):
            assert (await authorize(client, unused, Pkce.new())).status_code == 302
            started = await authorize(client, used, Pkce.new(), scope="courses:read")
            assert (
                await consent(browser, started.headers["location"])
            ).status_code == 303  # a grant names it now
            clock.now += timedelta(hours=1, seconds=1)
            documents["/oauth/later.json"] = {
                "client_id": f"{base}/oauth/later.json",
                "redirect_uris": [REDIRECT],
            }
            assert (await authorize(client, f"{base}/oauth/later.json", Pkce.new())).status_code == 302
    async with store.sessions() as session:
        left = set((await session.scalars(select(col(OAuthClient.id)))).all())
    assert left == {used, f"{base}/oauth/later.json"}


# ---- 3. revocation for every advertised client authentication method


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def _connect_confidential(client, browser, method: str) -> tuple[str, str, dict]:
    """Register a `method` client, consent, and exchange its code: (client id, secret, tokens)."""
    registered = (await register(client, token_endpoint_auth_method=method)).json()
    client_id, secret = registered["client_id"], registered["client_secret"]
    pkce = Pkce.new()
    started = await authorize(client, client_id, pkce, scope="courses:read")
    code = query_of((await consent(browser, started.headers["location"])).headers["location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": pkce.verifier,
    }
    if method == "client_secret_basic":
        issued = await client.post("/token", data=form, headers=_basic(client_id, secret))
    else:
        issued = await token(client, **form, client_secret=secret)
    assert issued.status_code == 200, issued.text
    return client_id, secret, issued.json()


async def test_a_public_client_revokes_its_access_token_and_its_refresh_token(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id, issued = await connect(client, browser)
        revoked = await client.post("/revoke", data={"token": issued["access_token"], "client_id": client_id})
        assert revoked.status_code == 200, revoked.text
        assert (await mcp_post(client, issued["access_token"])).status_code == 401
        client_id, issued = await connect(client, browser)
        revoked = await client.post(
            "/revoke",
            data={
                "token": issued["refresh_token"],
                "client_id": client_id,
                "token_type_hint": "refresh_token",
            },
        )
        assert revoked.status_code == 200, revoked.text
        assert (await mcp_post(client, issued["access_token"])).status_code == 401  # the whole grant ends
        refreshed = await token(
            client, grant_type="refresh_token", refresh_token=issued["refresh_token"], client_id=client_id
        )
        assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


async def test_a_client_secret_basic_client_revokes_its_tokens_and_a_wrong_secret_is_invalid_client(
    store, tenant
):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id, secret, issued = await _connect_confidential(client, browser, "client_secret_basic")
        for wrong in (_basic(client_id, "not-the-secret"), {}):
            refused = await client.post(
                "/revoke", data={"token": issued["access_token"], "client_id": client_id}, headers=wrong
            )
            assert refused.status_code == 401 and refused.json()["error"] == "invalid_client", refused.text
        assert (
            'Basic realm="blohko-oauth"'
            in (
                await client.post(
                    "/revoke", data={"token": issued["access_token"]}, headers=_basic(client_id, "nope")
                )
            ).headers["www-authenticate"]
        )
        assert (await mcp_post(client, issued["access_token"])).status_code == 200  # refused: nothing revoked
        # RFC 6749 §2.3.1: with Basic authentication the client id may be in the header alone.
        revoked = await client.post(
            "/revoke", data={"token": issued["refresh_token"]}, headers=_basic(client_id, secret)
        )
        assert revoked.status_code == 200, revoked.text
        assert (await mcp_post(client, issued["access_token"])).status_code == 401
        _, _, issued = await _connect_confidential(client, browser, "client_secret_basic")
        assert (await mcp_post(client, issued["access_token"])).status_code == 200


async def test_a_client_secret_post_client_revokes_and_a_wrong_secret_is_invalid_client(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id, secret, issued = await _connect_confidential(client, browser, "client_secret_post")
        form = {"token": issued["access_token"], "client_id": client_id}
        refused = await client.post("/revoke", data={**form, "client_secret": "not-the-secret"})
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
        assert (await mcp_post(client, issued["access_token"])).status_code == 200
        # Another client cannot revoke this one's token: answered like an unknown token, and it lives on.
        other_id, _ = await connect(client, browser)
        assert (
            await client.post("/revoke", data={"token": issued["access_token"], "client_id": other_id})
        ).status_code == 200
        assert (await mcp_post(client, issued["access_token"])).status_code == 200
        assert (await client.post("/revoke", data={**form, "client_secret": secret})).status_code == 200
        assert (await mcp_post(client, issued["access_token"])).status_code == 401
        missing = await client.post("/revoke", data={"client_id": client_id, "client_secret": secret})
        assert missing.status_code == 400 and missing.json() == {
            "error": "invalid_request",
            "error_description": "token: Field required",
        }


async def test_the_metadata_advertises_what_revocation_and_registration_accept(store):
    async with server(store) as client:
        metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    methods = ["none", "client_secret_post", "client_secret_basic"]
    assert (
        metadata["token_endpoint_auth_methods_supported"]
        == metadata["revocation_endpoint_auth_methods_supported"]
        == methods
    )
    assert metadata["response_types_supported"] == ["code"] and metadata[
        "code_challenge_methods_supported"
    ] == ["S256"]


# ---- 5. /authorize is no open redirector


@pytest.mark.parametrize(
    ("params", "error", "named"),
    [
        ({"scope": "courses:read nope:steal"}, "invalid_scope", "nope:steal"),
        ({"response_type": "token"}, "unsupported_response_type", "response_type"),
        ({"code_challenge": None}, "invalid_request", "code_challenge: Field required"),
        ({"code_challenge_method": "plain"}, "invalid_request", "code_challenge_method"),
        ({"resource": EVIL}, "invalid_target", EVIL),
    ],
)
async def test_errors_before_consent_are_a_page_not_a_redirect(store, params, error, named):
    async with server(store) as client:
        client_id = (await register(client, redirect_uris=["https://attacker.example/landing"])).json()[
            "client_id"
        ]
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": "https://attacker.example/landing",
            "code_challenge": Pkce.new().challenge,
            "code_challenge_method": "S256",
            "state": "st",
            **params,
        }
        response = await client.get(
            "/authorize", params={name: value for name, value in query.items() if value is not None}
        )
    found_error, description = refused_at_authorize(response)  # 400, HTML, no Location
    assert found_error == error and named in description
    assert "attacker.example" not in response.text


async def test_the_error_page_escapes_what_the_request_carried(store):
    async with server(store) as client:
        response = await client.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": "<script>alert(1)</script>",
                "code_challenge": Pkce.new().challenge,
            },
        )
    refused_at_authorize(response)
    assert "<script>alert(1)" not in response.text and "&lt;script&gt;alert(1)" in response.text


async def test_deny_on_the_consent_page_still_redirects_with_access_denied(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client)).json()["client_id"]
        started = await authorize(client, client_id, Pkce.new(), scope="courses:read")
        denied = await consent(browser, started.headers["location"], decision="deny")
    assert denied.status_code == 303 and query_of(denied.headers["location"])["error"] == "access_denied"


# ---- 6. userinfo in redirect URIs


@pytest.mark.parametrize(
    "uri",
    [
        "https://claude.ai@evil.example/cb",
        "https://claude.ai:x@evil.example/cb",
        "http://a@127.0.0.1:9999/cb",
    ],
)
async def test_a_redirect_uri_with_userinfo_is_refused_at_registration(store, uri):
    async with server(store) as client:
        refused = await register(client, redirect_uris=[uri])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_redirect_uri"
    assert "userinfo" in refused.json()["error_description"]
    assert await count_rows(store, OAuthClient) == 0


async def test_a_metadata_document_with_a_userinfo_redirect_uri_is_refused(store):
    documents: dict[str, dict] = {}
    with local_http_server(documents) as base:
        client_id = f"{base}/oauth/client.json"
        documents["/oauth/client.json"] = {
            "client_id": client_id,
            "client_name": "Doc",
            "redirect_uris": ["https://claude.ai@evil.example/cb"],
        }
        async with server(store, oauth_allow_loopback_metadata=True) as client:
            refused = await authorize(
                client, client_id, Pkce.new(), redirect_uri="https://claude.ai@evil.example/cb"
            )
    refused_at_authorize(refused)
    assert "evil.example" not in refused.headers.get("location", "")
    assert redirect_uri_problem("https://claude.ai@evil.example/cb") is not None
    assert await count_rows(store, OAuthClient) == 0


async def test_a_userinfo_redirect_uri_stored_before_the_rule_gets_no_consent_page_and_no_code(store, tenant):
    evil = "https://claude.ai@evil.example/cb"
    await save_client(
        store,
        client_id="old-client",
        source="registration",
        name="Claude",
        clock=Clock.at_present(),
        secret=None,
        information={"redirect_uris": [evil], "token_endpoint_auth_method": "none", "scope": "courses:read"},
    )
    async with server(store) as client, owner_browser(client, tenant) as browser:
        refused = await authorize(client, "old-client", Pkce.new(), redirect_uri=evil, scope="courses:read")
        assert refused_at_authorize(refused)[0] == "invalid_request"
        # The consent page itself, reached directly with the request's fields, refuses too.
        query = {
            "client_id": "old-client",
            "redirect_uri": evil,
            "resource": RESOURCE,
            "code_challenge": Pkce.new().challenge,
        }
        page = await browser.get("/dashboard/authorize", params=query)
    assert page.status_code == 400 and "userinfo" in page.text and "claude.ai@" not in page.text
    assert await count_rows(store, OAuthGrant) == 0


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://app.example.com/cb", "app.example.com"),
        ("https://app.example.com:443/cb", "app.example.com"),
        ("https://app.example.com:8443/cb", "app.example.com:8443"),
        ("http://127.0.0.1:9999/callback", "127.0.0.1:9999"),
        ("http://[::1]:7777/cb", "[::1]:7777"),
    ],
)
async def test_the_consent_page_shows_the_redirect_host_plainly(store, tenant, uri, shown):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client, redirect_uris=[uri])).json()["client_id"]
        started = await authorize(client, client_id, Pkce.new(), redirect_uri=uri, scope="courses:read")
        page = await browser.get(started.headers["location"].removeprefix(ISSUER))
    assert page.status_code == 200, page.text
    assert f'<code class="redirect-host">{shown}</code>' in page.text


# ---- 10. /token checks resource (RFC 8707)


async def test_a_code_exchange_for_another_resource_is_invalid_target(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id = (await register(client)).json()["client_id"]
        pkce = Pkce.new()
        started = await authorize(client, client_id, pkce, scope="courses:read", resource=RESOURCE)
        code = query_of((await consent(browser, started.headers["location"])).headers["location"])["code"]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": pkce.verifier,
        }
        refused = await token(client, **exchange, resource=EVIL)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_target", refused.text
        # The refusal did not spend the code: the exchange for this server's resource works.
        issued = await token(client, **exchange, resource=RESOURCE)
        assert issued.status_code == 200, issued.text
        assert (await mcp_post(client, issued.json()["access_token"])).status_code == 200


async def test_a_refresh_for_another_resource_is_invalid_target(store, tenant):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        client_id, issued = await connect(client, browser)
        refresh = {
            "grant_type": "refresh_token",
            "refresh_token": issued["refresh_token"],
            "client_id": client_id,
        }
        refused = await token(client, **refresh, resource=EVIL)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_target", refused.text
        assert (await token(client, **refresh, resource=RESOURCE)).status_code == 200
