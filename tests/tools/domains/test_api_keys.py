"""Producer sessions and API key management over REST: login, create, use, list, revoke, logout."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy import select

from storage.engine import open_store
from storage.tables import SignIn
from tests.support.clock import Clock
from tests.support.factories import mcp_client, ok
from tests.support.rest import bearer, http_app, rest_client, seed

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def _login(http, tenant) -> str:
    response = await http.post(
        "/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password}
    )
    assert response.status_code == 200, response.text
    return response.json()["session"]["token"]


async def _new_key(http, token: str, **body) -> dict:
    body = {"name": "Production API", "permissions": ["*"], **body}
    response = await http.post("/api-keys", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()["apiKey"]


async def _mcp_over_http(http, key: str):
    """A tools/call on the app's streamable HTTP endpoint (/mcp), as a remote agent sends it."""
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}},
    }
    return await http.post("http://127.0.0.1/mcp", json=message, headers={**MCP_HEADERS, **bearer(key)})


# ---- login and logout


async def test_login_answers_a_session_token_and_sets_an_httponly_cookie(app, tenant):
    async with rest_client(app) as http:
        response = await http.post(
            "/auth/login", json={"email": tenant.owner_email.upper(), "password": tenant.owner_password}
        )
    assert response.status_code == 200
    session = response.json()["session"]
    assert session["token"].startswith("bls_") and len(session["token"]) >= 40
    assert (session["producerId"], session["userId"]) == (tenant.producer_id, tenant.owner_user_id)
    assert set(session) == {"id", "token", "producerId", "userId", "createdAt", "expiresAt"}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"blohko_session={session['token']};")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/", "max-age=43200"} <= attributes
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back


async def test_a_wrong_password_and_an_unknown_email_get_the_same_401(app, tenant, http):
    student = (
        await http.post("/students", json={"name": "S", "email": "s@example.com", "password": "student-pass"})
    ).json()
    attempts = [
        {"email": tenant.owner_email, "password": "wrong-password"},
        {"email": "nobody@example.com", "password": tenant.owner_password},
        {"email": student["student"]["email"], "password": "student-pass"},  # students cannot log in here
    ]
    async with rest_client(app) as anonymous:
        responses = [await anonymous.post("/auth/login", json=attempt) for attempt in attempts]
    for response in responses:
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized", "message": "Invalid email or password"}
        assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"email": "a@example.com"}, "Invalid input: password: Field required"),
        (
            {"email": "a@example.com", "password": "x", "remember": True},
            "Invalid input: remember: unknown field",
        ),
        ({"email": 7, "password": "x"}, "Invalid input: email: Input should be a valid string"),
    ],
)
async def test_a_malformed_login_is_400(app, body, message):
    async with rest_client(app) as http:
        response = await http.post("/auth/login", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request", "message": message}


async def test_logout_ends_the_session_at_once_and_clears_the_cookie(app, tenant):
    async with rest_client(app) as http:
        token = await _login(http, tenant)
        out = await http.post("/auth/logout", headers=bearer(token))
        after = await http.get("/api-keys", headers=bearer(token))
        again = await http.post("/auth/logout", headers=bearer(token))
    assert out.status_code == 200 and out.json() == {"loggedOut": True}
    assert out.headers["set-cookie"].startswith('blohko_session="";')
    assert after.status_code == 401
    assert after.json() == {"error": "unauthorized", "message": "This session has ended; log in again"}
    assert again.status_code == 401


async def test_a_session_expires_after_its_lifetime(store, tenant):
    clock = Clock.at_present()
    app = http_app(store, clock=clock, session_ttl_hours=1)
    async with rest_client(app) as http:
        token = await _login(http, tenant)
        clock.now += timedelta(minutes=59)
        before = await http.get("/api-keys", headers=bearer(token))
        clock.now += timedelta(minutes=1)
        after = await http.get("/api-keys", headers=bearer(token))
    assert before.status_code == 200
    assert after.status_code == 401
    assert after.json()["message"] == "This session has expired; log in again"


async def test_a_session_created_by_one_process_works_in_another(store, tenant):
    async with (
        open_store(store.url) as other_store,  # another server process: its own engine and app
        rest_client(http_app(store)) as first,
        rest_client(http_app(other_store)) as second,
    ):
        token = await _login(first, tenant)
        listed = await second.get("/api-keys", headers=bearer(token))
        await second.post("/auth/logout", headers=bearer(token))
        ended = await first.get("/api-keys", headers=bearer(token))
    assert listed.status_code == 200
    assert ended.status_code == 401


async def test_only_the_session_tokens_hash_is_stored(store, app, tenant):
    async with rest_client(app) as http:
        token = await _login(http, tenant)
    async with store.sessions() as session:
        rows = (await session.scalars(select(SignIn))).all()
    assert [row.token_hash for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert all(token not in str(value) for row in rows for value in row.model_dump().values())


async def test_login_forgets_the_users_ended_sessions(store, app, tenant):
    async with rest_client(app) as http:
        for _ in range(3):
            await http.post("/auth/logout", headers=bearer(await _login(http, tenant)))
        await _login(http, tenant)
    async with store.sessions() as session:
        rows = (await session.scalars(select(SignIn))).all()
    assert len(rows) == 1 and rows[0].ended_at is None


# ---- API keys


async def test_a_key_created_with_a_session_works_is_listed_without_its_secret_and_dies_when_revoked(
    store, app, tenant
):
    async with (
        app.router.lifespan_context(app),
        rest_client(app) as http,
    ):  # the lifespan runs MCP's session manager
        token = await _login(http, tenant)
        body = {
            "name": "Production API",
            "description": "Used by our automation pipeline",
            "producerId": tenant.producer_id,
            "permissions": ["courses:*", "students:*", "enrollments:*"],
            "expiresInDays": 90,
        }
        created = await http.post("/api-keys", json=body, headers=bearer(token))
        new = created.json()["apiKey"]
        used = await http.get("/courses", headers=bearer(new["key"]))
        listed = (await http.get("/api-keys", headers=bearer(token))).json()["data"]
        async with mcp_client(store, new["key"]) as agent:
            ok(await agent.call_tool("whoami", {}))  # an open MCP session with the key
            over_http = await _mcp_over_http(http, new["key"])
            revoked = await http.delete("/api-keys", params={"id": new["id"]}, headers=bearer(token))
            rest_after = await http.get("/courses", headers=bearer(new["key"]))
            with pytest.raises(MCPError, match="This API key has been revoked"):
                await agent.call_tool("whoami", {})
        http_after = await _mcp_over_http(http, new["key"])
        listed_after = (await http.get("/api-keys", headers=bearer(token))).json()["data"]

    assert created.status_code == 201
    assert new["key"].startswith("blk_") and new["key"].startswith(new["prefix"])
    assert new["permissions"] == ["courses:*", "students:*", "enrollments:*"]
    assert (new["name"], new["description"], new["producerId"]) == (
        "Production API",
        body["description"],
        tenant.producer_id,
    )
    assert new["expiresAt"] is not None and new["revokedAt"] is None
    assert used.status_code == 200
    assert (
        over_http.status_code == 200
        and over_http.json()["result"]["structuredContent"]["key"]["id"] == new["id"]
    )

    mine = next(key for key in listed if key["id"] == new["id"])
    assert "key" not in mine and all(new["key"] not in str(value) for value in mine.values())
    assert {k: mine[k] for k in ("prefix", "name", "permissions", "createdAt", "expiresAt")} == {
        k: new[k] for k in ("prefix", "name", "permissions", "createdAt", "expiresAt")
    }
    assert mine["lastUsedAt"] is not None and mine["revokedAt"] is None
    assert {key["id"] for key in listed} == {new["id"], tenant.key_id}

    assert revoked.status_code == 200 and revoked.json()["apiKey"]["revokedAt"] is not None
    assert rest_after.status_code == 401
    assert rest_after.json() == {"error": "unauthorized", "message": "This API key has been revoked"}
    assert http_after.status_code == 401 and http_after.json()["message"] == "This API key has been revoked"
    assert next(key for key in listed_after if key["id"] == new["id"])["revokedAt"] is not None


async def test_wildcard_permissions_grant_their_resource_only(app, tenant):
    async with rest_client(app) as http:
        key = (await _new_key(http, await _login(http, tenant), permissions=["courses:*"]))["key"]
        courses = await http.post(
            "/courses",
            json={"title": "T", "slug": "t-course", "categoryId": "cat_web_development"},
            headers=bearer(key),
        )
        students = await http.get("/students", headers=bearer(key))
    assert courses.status_code == 201
    assert students.status_code == 403 and students.json()["error"] == "forbidden"


async def test_an_api_key_cannot_call_the_api_keys_endpoints(app, tenant):
    message = (
        "An API key cannot call this endpoint: it is the producer's owner's (API keys, connected apps, "
        "webhook secrets and deliveries); log in as the owner and send the session token"
    )
    async with rest_client(app, tenant.key) as http:  # a full-access key
        responses = [
            await http.get("/api-keys"),
            await http.post("/api-keys", json={"name": "Escalate", "permissions": ["*"]}),
            await http.delete("/api-keys", params={"id": tenant.key_id}),
            await http.post("/auth/logout"),
        ]
    for response in responses:
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized", "message": message}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_api_keys_without_a_session_are_401(app):
    async with rest_client(app) as http, rest_client(app, cookies={"blohko_session": "bls_forged"}) as forged:
        missing = await http.get("/api-keys")
        invalid = await http.get("/api-keys", headers=bearer("bls_" + "x" * 43))
        cookie = await forged.get("/api-keys")
    assert [r.status_code for r in (missing, invalid, cookie)] == [401, 401, 401]
    assert missing.json()["message"].startswith("Missing session")
    assert invalid.json()["message"] == cookie.json()["message"] == "Invalid session"


async def test_a_session_manages_only_its_own_producers_keys(app, tenant, tenant_factory):
    other = await tenant_factory("Other Academy")
    async with rest_client(app) as http:
        token = await _login(http, tenant)
        foreign = await http.post(
            "/api-keys",
            json={"name": "X", "permissions": ["*"], "producerId": other.producer_id},
            headers=bearer(token),
        )
        unknown = await http.post(
            "/api-keys",
            json={"name": "X", "permissions": ["*"], "producerId": "prod_nope"},
            headers=bearer(token),
        )
        revoke_foreign = await http.delete("/api-keys", params={"id": other.key_id}, headers=bearer(token))
        listed = (await http.get("/api-keys", headers=bearer(token))).json()["data"]
        still = await http.get("/whoami", headers=bearer(other.key))
    for response in (foreign, unknown):
        assert response.status_code == 403
        assert response.json() == {
            "error": "forbidden",
            "message": "A session manages only its own producer's API keys",
        }
    assert revoke_foreign.status_code == 404
    assert revoke_foreign.json() == {"error": "not_found", "message": "API key not found"}
    assert other.key_id not in {key["id"] for key in listed}
    assert still.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"name": "X", "permissions": ["courses:delete"]},
            "Invalid input: permissions[0]: unknown permission 'courses:delete'; use one of: ",
        ),
        ({"name": "X", "permissions": []}, "Invalid input: permissions: List should have at least 1 item"),
        (
            {"name": "X", "permissions": ["*"], "expiresInDays": 0},
            "Invalid input: expiresInDays: Input should be greater",
        ),
        ({"name": "", "permissions": ["*"]}, "Invalid input: name: String should have at least 1 character"),
        ({"name": "X", "permissions": ["*"], "scopes": ["*"]}, "Invalid input: scopes: unknown field"),
        ({"permissions": ["*"]}, "Invalid input: name: Field required"),
    ],
)
async def test_an_invalid_key_request_is_400(app, tenant, body, message):
    async with rest_client(app) as http:
        response = await http.post("/api-keys", json=body, headers=bearer(await _login(http, tenant)))
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert response.json()["message"].startswith(message)


async def test_revoke_needs_an_id_and_is_idempotent(app, tenant):
    async with rest_client(app) as http:
        token = await _login(http, tenant)
        key = await _new_key(http, token)
        missing = await http.delete("/api-keys", headers=bearer(token))
        first = await http.delete("/api-keys", params={"id": key["id"]}, headers=bearer(token))
        second = await http.delete("/api-keys", params={"id": key["id"]}, headers=bearer(token))
        unknown = await http.delete("/api-keys", params={"id": "key_nope"}, headers=bearer(token))
    assert missing.status_code == 400 and missing.json()["message"] == "Invalid input: id: Field required"
    assert first.status_code == second.status_code == 200
    assert first.json()["apiKey"]["revokedAt"] == second.json()["apiKey"]["revokedAt"]
    assert unknown.status_code == 404


async def test_a_key_stops_working_when_it_expires(store, tenant):
    clock = Clock.at_present()
    app = http_app(store, clock=clock)
    async with rest_client(app) as http:
        token = await _login(http, tenant)
        key = (await _new_key(http, token, expiresInDays=1))["key"]
        before = await http.get("/whoami", headers=bearer(key))
        clock.now += timedelta(days=1)
        after = await http.get("/whoami", headers=bearer(key))
    assert before.status_code == 200
    assert after.status_code == 401 and after.json()["message"] == "This API key has expired"


async def test_the_key_list_is_paginated_newest_first(store, app, tenant):
    await seed(store, tenant)
    async with rest_client(app) as http:
        token = await _login(http, tenant)
        names = [(await _new_key(http, token, name=f"key {i}"))["name"] for i in range(3)]
        page = await http.get("/api-keys", params={"page": 1, "limit": 2}, headers=bearer(token))
        bad = await http.get("/api-keys", params={"limit": "lots"}, headers=bearer(token))
    assert [key["name"] for key in page.json()["data"]] == names[::-1][:2]
    assert page.json()["pagination"] == {"page": 1, "limit": 2, "total": 4, "totalPages": 2, "hasMore": True}
    assert bad.status_code == 400
