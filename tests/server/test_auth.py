"""server/auth.py: how a request's credentials become a `Principal`, for every HTTP route.

A bearer API key, an OAuth access token (only where its resource is served), a producer session
(as a bearer token or the session cookie), or nobody for the one operation that admits it; a
credential of a kind the route does not accept is refused saying what it needs. The REST and MCP
answers built on it are tests/server/test_rest.py's and tests/server/test_oauth.py's."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

import httpx
import pytest
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from server.auth import SESSION_COOKIE, ApiKeyGate, authenticate_request, bearer_token
from server.request_state import PRINCIPAL_STATE_KEY
from storage.engine import Store
from storage.ids import utcnow
from tests.support.clock import Clock
from tests.support.factories import Tenant, add_key
from tests.support.rest import rest_client
from tools.core.context import ANONYMOUS, Principal, PrincipalKind
from tools.core.errors import Unauthorized
from tools.domains.accounts import revoke_api_key
from tools.domains.oauth import (
    ACCESS_TOKEN_TTL,
    create_grant,
    exchange_code,
    find_code,
    issue_code,
    save_client,
)
from tools.domains.sign_ins import OWNER_ONLY, login

RESOURCE = "https://school.example/mcp"
"""The OAuth resource a test's `/mcp` serves."""


def _connection(authorization: str | None = None, cookie: str | None = None) -> HTTPConnection:
    headers = []
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    return HTTPConnection(
        {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": headers}
    )


async def _authenticate(
    store: Store,
    *,
    accepted: Collection[PrincipalKind] = ("api_key",),
    authorization: str | None = None,
    cookie: str | None = None,
    clock=utcnow,
    resource: str | None = None,
) -> Principal:
    return await authenticate_request(
        _connection(authorization, cookie), store=store, clock=clock, accepted=accepted, resource=resource
    )


async def _refused(store: Store, **request) -> str:
    with pytest.raises(Unauthorized) as refused:
        await _authenticate(store, **request)
    return refused.value.message


async def _session_token(store: Store, tenant: Tenant) -> str:
    return (await login(store, email=tenant.owner_email, password=tenant.owner_password, clock=utcnow)).token


async def _access_token(store: Store, tenant: Tenant, permissions: list[str]) -> str:
    """An OAuth access token for `RESOURCE`, the way the authorization flow makes one."""
    client = await save_client(
        store,
        client_id="https://app.example/client.json",
        source="metadata_document",
        name="Example app",
        information={},
        secret=None,
        clock=utcnow,
    )
    async with store.writing() as db:
        grant = await create_grant(
            db,
            producer_id=tenant.producer_id,
            user_id=tenant.owner_user_id,
            client=client,
            redirect_uri="https://app.example/callback",
            resource=RESOURCE,
            permissions=permissions,
            clock=utcnow,
        )
        code = await issue_code(
            db,
            grant=grant,
            redirect_uri="https://app.example/callback",
            explicit=True,
            code_challenge="unchecked-here",
            scopes=permissions,
            clock=utcnow,
        )
    found = await find_code(store, client_id=client.id, code=code, clock=utcnow)
    assert found is not None, "the code was just issued"
    return (await exchange_code(store, code=found[0], grant=found[1], clock=utcnow)).access_token


def test_bearer_token_takes_the_bearer_scheme_only():
    assert bearer_token(_connection("Bearer blk_abc").headers) == "blk_abc"
    assert bearer_token(_connection("bearer   blk_abc  ").headers) == "blk_abc"
    assert bearer_token(_connection("Basic dXNlcjpwYXNz").headers) is None
    assert bearer_token(_connection("Bearer ").headers) is None
    assert bearer_token(_connection().headers) is None


async def test_a_valid_key_is_its_producers_principal_with_its_permissions(store: Store, tenant: Tenant):
    key = await add_key(store, tenant, ["students:read", "courses:read"])
    principal = await _authenticate(store, authorization=f"Bearer {key}")
    assert (principal.kind, principal.producer_id, principal.grants) == (
        "api_key",
        tenant.producer_id,
        ("students:read", "courses:read"),
    )
    assert principal.key_id is not None and principal.key_id != tenant.key_id


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Missing API key: send `Authorization: Bearer blk_...`"),
        ("Basic dXNlcjpwYXNz", "Missing API key: send `Authorization: Bearer blk_...`"),
        ("Bearer not-a-key", "Invalid API key"),
        ("Bearer blk_" + "x" * 43, "Invalid API key"),
        ("Bearer blk_" + "x" * 5000, "Invalid API key"),
    ],
    ids=["missing", "another-scheme", "malformed", "unknown", "too-long"],
)
async def test_a_missing_malformed_or_unknown_key_is_refused_saying_which(
    store: Store, authorization: str | None, message: str
):
    assert await _refused(store, authorization=authorization) == message


async def test_a_revoked_key_is_refused_as_revoked(store: Store, tenant: Tenant):
    async with store.writing() as db:
        await revoke_api_key(db, producer_id=tenant.producer_id, key_id=tenant.key_id, clock=utcnow)
    assert await _refused(store, authorization=f"Bearer {tenant.key}") == "This API key has been revoked"


async def test_a_key_is_refused_as_expired_from_its_expiry_on(store: Store, tenant: Tenant):
    key = await add_key(store, tenant, ["*"], expires_in_days=1)
    clock = Clock.at_present()
    assert (
        await _authenticate(store, authorization=f"Bearer {key}", clock=clock)
    ).producer_id == tenant.producer_id
    clock.advance(days=1, seconds=1)
    assert await _refused(store, authorization=f"Bearer {key}", clock=clock) == "This API key has expired"


async def test_a_session_is_accepted_as_a_bearer_token_or_the_cookie(store: Store, tenant: Tenant):
    token = await _session_token(store, tenant)
    by_bearer = await _authenticate(store, accepted=("session",), authorization=f"Bearer {token}")
    by_cookie = await _authenticate(store, accepted=("session",), cookie=token)
    assert by_bearer == by_cookie
    assert (by_cookie.kind, by_cookie.producer_id, by_cookie.user_id) == (
        "session",
        tenant.producer_id,
        tenant.owner_user_id,
    )


async def _login_over_rest(http: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await http.post(
        "/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password}
    )
    assert response.status_code == 200, response.text
    return response.json()["session"]["token"]


async def test_the_cookie_alone_authenticates_a_session(app, tenant):
    async with rest_client(app) as browser:
        await _login_over_rest(browser, tenant)  # the client keeps the cookie, as a browser does
        listed = await browser.get("/api-keys")
        created = await browser.post(
            "/api-keys", json={"name": "From the dashboard", "permissions": ["courses:read"]}
        )
    assert listed.status_code == 200
    assert created.status_code == 201


async def test_the_cookie_is_secure_over_https(app, tenant):
    async with rest_client(app, base_url="https://127.0.0.1/api/v1") as http:
        response = await http.post(
            "/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password}
        )
    assert "secure" in {part.strip().lower() for part in response.headers["set-cookie"].split(";")}


async def test_the_session_cookie_counts_only_where_sessions_are_accepted(store: Store, tenant: Tenant):
    token = await _session_token(store, tenant)
    assert await _refused(store, cookie=token) == "Missing API key: send `Authorization: Bearer blk_...`"


async def test_a_credential_of_a_kind_the_route_does_not_accept_is_refused_saying_what_it_needs(
    store: Store, tenant: Tenant
):
    token = await _session_token(store, tenant)
    assert (await _refused(store, authorization=f"Bearer {token}")).startswith(
        "A producer session cannot call this endpoint: send an API key"
    )
    assert await _refused(store, accepted=("session",), authorization=f"Bearer {tenant.key}") == OWNER_ONLY
    assert (await _refused(store, accepted=("session",))).startswith("Missing session")


async def test_a_route_that_admits_anyone_asks_for_no_credential(store: Store):
    assert (
        await _authenticate(store, accepted=("anonymous",), authorization="Bearer blk_nonsense") is ANONYMOUS
    )


async def test_an_oauth_token_acts_as_a_key_with_the_permissions_granted(store: Store, tenant: Tenant):
    token = await _access_token(store, tenant, ["students:read"])
    principal = await _authenticate(store, authorization=f"Bearer {token}", resource=RESOURCE)
    assert (principal.kind, principal.producer_id, principal.key_name, principal.grants) == (
        "api_key",
        tenant.producer_id,
        "Example app",
        ("students:read",),
    )
    assert principal.key_id is not None and principal.key_id.startswith("app")


async def test_an_oauth_token_is_refused_off_its_resource_and_after_it_expires(store: Store, tenant: Tenant):
    token = await _access_token(store, tenant, ["students:read"])
    assert (await _refused(store, authorization=f"Bearer {token}")).startswith(
        "An OAuth access token is only for the MCP endpoint"
    )
    elsewhere = "https://other.example/mcp"
    assert (
        await _refused(store, authorization=f"Bearer {token}", resource=elsewhere)
        == f"The access token was issued for another resource, not {elsewhere}"
    )
    later = Clock.at_present()
    later.advance(seconds=ACCESS_TOKEN_TTL.total_seconds() + timedelta(minutes=1).total_seconds())
    assert (
        await _refused(store, authorization=f"Bearer {token}", resource=RESOURCE, clock=later)
        == "The access token has expired: refresh it"
    )


async def _echo_principal(scope: Scope, receive: Receive, send: Send) -> None:
    principal = scope["state"][PRINCIPAL_STATE_KEY]
    await JSONResponse({"producerId": principal.producer_id})(scope, receive, send)


async def test_the_mcp_gate_hands_the_principal_on_or_answers_401_with_a_challenge(
    store: Store, tenant: Tenant
):
    gate = ApiKeyGate(
        _echo_principal,
        store=store,
        clock=utcnow,
        resource=RESOURCE,
        resource_metadata="https://school.example/.well-known/oauth-protected-resource/mcp",
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url="http://school.example"
    ) as http:
        passed = await http.post("/mcp", headers={"Authorization": f"Bearer {tenant.key}"})
        no_key = await http.post("/mcp")
        bad_key = await http.post("/mcp", headers={"Authorization": "Bearer blk_wrong"})
    assert (passed.status_code, passed.json()) == (200, {"producerId": tenant.producer_id})
    assert (no_key.status_code, no_key.json()["error"]) == (401, "unauthorized")
    challenge = no_key.headers["www-authenticate"]
    assert challenge.startswith(
        'Bearer realm="blohko", resource_metadata="https://school.example/.well-known/'
    )
    assert "invalid_token" not in challenge
    assert bad_key.status_code == 401 and bad_key.headers["www-authenticate"].endswith(
        ', error="invalid_token"'
    )
