"""The Host rule on every route, and cookie-authenticated writes only from our own pages
(issue 13, defects 4 and 5)."""

from __future__ import annotations

import pytest

from server.auth import SESSION_COOKIE
from tests.rest_support import bearer, rest_client

pytestmark = pytest.mark.anyio

EVIL = {"Host": "evil.example"}


async def _session(http, tenant) -> str:
    response = await http.post("/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password})
    assert response.status_code == 200, response.text
    return response.json()["session"]["token"]


async def test_every_route_but_healthz_refuses_a_host_that_is_not_allowed(app, tenant):
    login = {"email": tenant.owner_email, "password": tenant.owner_password}
    async with rest_client(app) as http:
        token = await _session(http, tenant)
        answers = {
            "whoami": await http.get("/whoami", headers={**EVIL, **bearer(tenant.key)}),
            "login": await http.post("/auth/login", json=login, headers=EVIL),
            "api-keys": await http.get("/api-keys", headers={**EVIL, **bearer(token)}),
            "openapi": await http.get("/openapi.json", headers=EVIL),
            "mcp": await http.post("http://127.0.0.1/mcp", json={}, headers={**EVIL, **bearer(tenant.key)}),
        }
        health = await http.get("http://127.0.0.1/healthz", headers=EVIL)
        allowed = await http.get("/whoami", headers={"Host": "127.0.0.1:8000", **bearer(tenant.key)})
    assert {name: response.status_code for name, response in answers.items()} == dict.fromkeys(answers, 421)
    assert answers["whoami"].json()["error"] == "bad_request" and "BLOHKO_ALLOWED_HOSTS" in answers["whoami"].json()["message"]
    assert health.status_code == 200  # load balancers probe by address
    assert allowed.status_code == 200


async def test_a_configured_public_host_is_allowed_everywhere(store, tenant):
    from tests.rest_support import http_app

    async with rest_client(http_app(store, allowed_hosts=["school.example.com"]), tenant.key) as http:
        response = await http.get("/whoami", headers={"Host": "school.example.com"})
    assert response.status_code == 200


async def test_a_cross_origin_post_with_the_session_cookie_is_refused_and_creates_nothing(app, tenant):
    async with rest_client(app) as http:
        token = await _session(http, tenant)
        cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
        # The review's attack: a page on another port posts a text/plain "form" with the cookie.
        text_plain = await http.post(
            "/api-keys",
            content=b'{"name": "pwned", "permissions": ["*"]}',
            headers={**cookie, "Content-Type": "text/plain", "Origin": "http://127.0.0.1:3000"},
        )
        json_cross_origin = await http.post(
            "/api-keys", json={"name": "pwned", "permissions": ["*"]}, headers={**cookie, "Origin": "http://127.0.0.1:3000"}
        )
        by_referer = await http.post(
            "/api-keys", json={"name": "pwned", "permissions": ["*"]}, headers={**cookie, "Referer": "https://evil.example/page"}
        )
        logout = await http.post("/auth/logout", headers={**cookie, "Origin": "http://evil.example"})
        listed = await http.get("/api-keys", headers=bearer(token))
    assert [r.status_code for r in (text_plain, json_cross_origin, by_referer, logout)] == [403] * 4
    assert text_plain.json()["error"] == "forbidden"
    assert [key["name"] for key in listed.json()["data"]] == ["test key"]  # still signed in, no new key


async def test_a_same_origin_post_with_the_session_cookie_works(app, tenant):
    async with rest_client(app) as http:
        token = await _session(http, tenant)
        cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
        created = await http.post(
            "/api-keys", json={"name": "from the page", "permissions": ["courses:read"]}, headers={**cookie, "Origin": "http://127.0.0.1"}
        )
    assert created.status_code == 201


async def test_a_json_endpoint_refuses_a_body_that_is_not_declared_json(app, tenant):
    async with rest_client(app) as http:
        token = await _session(http, tenant)
        as_text = await http.post(
            "/api-keys", content=b'{"name": "x", "permissions": ["*"]}', headers={**bearer(token), "Content-Type": "text/plain"}
        )
        as_form = await http.post("/students", data={"name": "Ada", "email": "ada@example.com"}, headers=bearer(tenant.key))
        empty_logout = await http.post("/auth/logout", headers={**bearer(token), "Content-Type": "text/plain"})
    assert as_text.status_code == 400 and "Content-Type: application/json" in as_text.json()["message"]
    assert as_form.status_code == 400 and "Content-Type: application/json" in as_form.json()["message"]
    assert empty_logout.status_code == 200  # no body, nothing to misread
