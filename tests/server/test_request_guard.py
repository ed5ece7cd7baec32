"""The Host rule on every route, and cookie-authenticated writes only from our own pages
; the Host header parsed strictly and matched exactly."""

from __future__ import annotations

import httpx
import pytest

from server.auth import SESSION_COOKIE
from server.hosts import HostPort, HostRule, parse_host
from server.settings import Settings
from tests.support.rest import bearer, http_app, rest_client

EVIL = {"Host": "evil.example"}


async def _session(http, tenant) -> str:
    response = await http.post(
        "/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password}
    )
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
    assert (
        answers["whoami"].json()["error"] == "bad_request"
        and "BLOHKO_ALLOWED_HOSTS" in answers["whoami"].json()["message"]
    )
    assert health.status_code == 200  # load balancers probe by address
    assert allowed.status_code == 200


async def test_a_configured_public_host_is_allowed_everywhere(store, tenant):
    from tests.support.rest import http_app

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
            "/api-keys",
            json={"name": "pwned", "permissions": ["*"]},
            headers={**cookie, "Origin": "http://127.0.0.1:3000"},
        )
        by_referer = await http.post(
            "/api-keys",
            json={"name": "pwned", "permissions": ["*"]},
            headers={**cookie, "Referer": "https://evil.example/page"},
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
            "/api-keys",
            json={"name": "from the page", "permissions": ["courses:read"]},
            headers={**cookie, "Origin": "http://127.0.0.1"},
        )
    assert created.status_code == 201


async def test_a_json_endpoint_refuses_a_body_that_is_not_declared_json(app, tenant):
    async with rest_client(app) as http:
        token = await _session(http, tenant)
        as_text = await http.post(
            "/api-keys",
            content=b'{"name": "x", "permissions": ["*"]}',
            headers={**bearer(token), "Content-Type": "text/plain"},
        )
        as_form = await http.post(
            "/students", data={"name": "Ada", "email": "ada@example.com"}, headers=bearer(tenant.key)
        )
        empty_logout = await http.post(
            "/auth/logout", headers={**bearer(token), "Content-Type": "text/plain"}
        )
    assert as_text.status_code == 400 and "Content-Type: application/json" in as_text.json()["message"]
    assert as_form.status_code == 400 and "Content-Type: application/json" in as_form.json()["message"]
    assert empty_logout.status_code == 200  # no body, nothing to misread


# Each begins like an allowed host, or names one in a form a browser never sends.
HOSTILE_HOSTS = {
    "userinfo": "localhost:80@evil.example",
    "userinfo, no port": "127.0.0.1@evil.example",
    "port with letters": "127.0.0.1:8000.evil.example",
    "port then letters": "localhost:80ab",
    "suffix": "localhost.evil.example",
    "prefix": "evil-localhost",
    "extra colon": "localhost:8000:80",
    "empty port": "localhost:",
    "port out of range": "localhost:99999",
    "port zero": "localhost:0",
    "empty": "",
    "trailing dot": "localhost.",
    "space": "localhost 8000",
    "path": "localhost/evil.example",
    "ipv6 without brackets": "::1",
    "ipv6 unclosed": "[::1",
    "ipv6 then a name": "[::1]evil.example",
    "ipv6 extra colon": "[::1]:8000:80",
    "ipv6 zone id": "[::1%25lo]",
    "ipv6 mapped ipv4": "[::ffff:127.0.0.1]",
    "uppercase other host": "EVIL.EXAMPLE",
    "uppercase userinfo": "LOCALHOST:80@EVIL.EXAMPLE",
    "not ascii": "lоcalhost",  # a Cyrillic o
}
FRIENDLY_HOSTS = [
    "127.0.0.1",
    "127.0.0.1:8000",
    "localhost",
    "localhost:1",
    "LOCALHOST:8000",
    "[::1]",
    "[::1]:8000",
    "[0:0::1]:65535",
]


async def _answers_for(app, tenant, host: str) -> dict[str, int]:
    """The status of a REST call, an MCP call, a dashboard page and a sign-in, each sent with `host`."""
    headers = {b"Host": host.encode()}  # bytes: httpx sends them as they are, UTF-8 too
    authorized = {**headers, b"Authorization": f"Bearer {tenant.key}".encode()}
    mcp_body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    mcp_headers = {**authorized, b"Accept": b"application/json, text/event-stream"}
    async with app.router.lifespan_context(app), rest_client(app, base_url="http://127.0.0.1") as http:
        answers = {
            "rest": await http.get("/api/v1/whoami", headers=authorized),
            "mcp": await http.post("/mcp", json=mcp_body, headers=mcp_headers),
            "dashboard": await http.get("/dashboard/sign-in", headers=headers),
            "sign-in": await http.post(
                "/dashboard/sign-in", data={"email": "x@example.com"}, headers=headers
            ),
        }
    for name, response in answers.items():
        if response.status_code == 421:  # ours, not the MCP SDK's plain-text refusal: the guard ran first
            assert response.json()["error"] == "bad_request", (name, response.text)
    return {name: response.status_code for name, response in answers.items()}


@pytest.mark.parametrize("host", HOSTILE_HOSTS.values(), ids=HOSTILE_HOSTS.keys())
async def test_a_host_that_only_begins_like_an_allowed_one_is_refused_on_rest_mcp_and_the_dashboard(
    app, tenant, host
):
    assert await _answers_for(app, tenant, host) == {
        "rest": 421,
        "mcp": 421,
        "dashboard": 421,
        "sign-in": 421,
    }


@pytest.mark.parametrize("host", FRIENDLY_HOSTS)
async def test_an_allowed_host_in_any_case_and_with_any_port_is_served(app, tenant, host):
    # The sign-in post has no CSRF token: 403 from the page, past the Host rule.
    assert await _answers_for(app, tenant, host) == {
        "rest": 200,
        "mcp": 200,
        "dashboard": 200,
        "sign-in": 403,
    }


async def test_two_host_headers_are_refused(app, tenant):
    async with rest_client(app, tenant.key) as http:
        request = http.build_request("GET", "/whoami")
        request.headers = httpx.Headers(
            [
                *[(k, v) for k, v in request.headers.multi_items() if k != "host"],
                ("host", "127.0.0.1"),
                ("host", "evil.example"),
            ]
        )
        response = await http.send(request)
    assert response.status_code == 421


async def test_a_configured_host_with_a_port_allows_that_port_only(store, tenant):
    app = http_app(store, allowed_hosts=["school.example.com:8443"], public_url="https://api.example.com")
    async with rest_client(app, tenant.key) as http:
        answers = {
            host: (await http.get("/whoami", headers={"Host": host})).status_code
            for host in (
                "school.example.com:8443",
                "school.example.com",
                "school.example.com:443",
                "api.example.com",
                "API.example.com:443",
                "api.example.com.evil.example",
            )
        }
    assert answers == {
        "school.example.com:8443": 200,
        "school.example.com": 421,
        "school.example.com:443": 421,
        "api.example.com": 200,
        "API.example.com:443": 200,
        "api.example.com.evil.example": 421,
    }


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("LocalHost:8000", HostPort("localhost", 8000)),
        ("127.0.0.1", HostPort("127.0.0.1")),
        ("[0:0:0:0:0:0:0:1]:80", HostPort("[::1]", 80)),
        ("school-1.example.com", HostPort("school-1.example.com")),
        *(
            (value, None)
            for value in HOSTILE_HOSTS.values()
            if value not in ("EVIL.EXAMPLE", "evil-localhost", "localhost.evil.example", "[::ffff:127.0.0.1]")
        ),
        ("-evil.example", None),
        ("a" * 64 + ".example", None),
        (None, None),
    ],
)
def test_the_host_header_is_parsed_strictly(header, parsed):
    assert parse_host(header) == parsed


def test_an_allowed_hosts_entry_that_is_not_a_host_is_refused_at_startup():
    with pytest.raises(ValueError, match=r"BLOHKO_ALLOWED_HOSTS: 'localhost:\*' is not a host name"):
        Settings(allowed_hosts=["school.example.com", "localhost:*"])
    with pytest.raises(ValueError, match="is not a host name"):
        HostRule(["*.example.com"])


def test_a_server_bound_on_a_specific_address_answers_it_and_its_public_host():
    from server.http_app import allowed_hosts

    rule = HostRule(allowed_hosts(Settings(host="fd00::5", public_url="https://school.example.com")))
    assert (
        rule.allows("[fd00::5]:8000") and rule.allows("school.example.com") and rule.allows("localhost:8000")
    )
    assert not rule.allows("fd00::5") and not rule.allows("school.example.com.evil.example")
