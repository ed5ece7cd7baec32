"""Behind a TLS proxy: an https public URL makes every cookie the server sets
`Secure`, whatever the plain-http hop from the proxy says; `X-Forwarded-Proto` and
`X-Forwarded-For` count only from the proxies in `BLOHKO_FORWARDED_ALLOW_IPS`. The same through a
real Caddy is `test_tls_proxy.py`."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from server.auth import SESSION_COOKIE
from server.dashboard.security import SIGN_IN_COOKIE
from server.settings import Settings
from tests.support.dashboard import csrf_of, sign_in
from tests.support.oauth import Pkce, authorize, consent, query_of, register
from tests.support.processes import cli_env, http_server, run_cli
from tests.support.rest import bearer, http_app, rest_client

PUBLIC_URL = "https://school.example.com"


def _behind_a_tls_proxy(app: ASGIApp) -> ASGIApp:
    """`app` as a TLS proxy's upstream: the client speaks https (and so sends its `Secure` cookies),
    the app sees the plain-http hop, with no `X-Forwarded-Proto` it trusts."""

    async def plain_hop(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "scheme": "http"} if scope["type"] == "http" else scope, receive, send)

    return plain_hop


def _cookie_attributes(set_cookie: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in set_cookie.split(";")[1:]}


async def test_every_cookie_is_secure_behind_an_https_public_url_though_the_hop_is_plain_http(store, tenant):
    seen: list[tuple[str, str]] = []  # (request, Set-Cookie) for every cookie any response set or cleared

    async def record(response: httpx.Response) -> None:
        seen.extend(
            (f"{response.request.method} {response.request.url.path}", value)
            for value in response.headers.get_list("set-cookie")
        )

    app = http_app(store, public_url=PUBLIC_URL)
    # No X-Forwarded-Proto, as from a proxy that sends none or one not in BLOHKO_FORWARDED_ALLOW_IPS.
    proxied = _behind_a_tls_proxy(app)
    async with (
        app.router.lifespan_context(app),
        rest_client(proxied, base_url="https://127.0.0.1", event_hooks={"response": [record]}) as browser,
    ):
        # The REST API's sign-in and sign-out.
        signed = await browser.post(
            "/api/v1/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password}
        )
        await browser.post("/api/v1/auth/logout", headers=bearer(signed.json()["session"]["token"]))
        # The dashboard: its sign-in form, a failed and a good sign-in.
        assert (await sign_in(browser, tenant.owner_email, "not-the-password")).status_code == 401
        assert (await sign_in(browser, tenant.owner_email, tenant.owner_password)).status_code == 303
        # The OAuth consent flow: /authorize, the consent page, the answer.
        client_id = (await register(browser)).json()["client_id"]
        started = await authorize(
            browser, client_id, Pkce.new(), scope="courses:read", resource=f"{PUBLIC_URL}/mcp"
        )
        assert started.status_code == 302, started.text
        answered = await consent(browser, started.headers["location"])
        assert answered.status_code == 303 and "code" in query_of(answered.headers["location"])
        # Sign out of the dashboard.
        overview = await browser.get("/dashboard/keys")
        assert (
            await browser.post("/dashboard/sign-out", data={"csrf_token": csrf_of(overview)})
        ).status_code == 303

    names = {value.split("=", 1)[0] for _, value in seen}
    assert names == {SESSION_COOKIE, SIGN_IN_COOKIE}
    assert len(seen) >= 8  # set and cleared, over REST and the dashboard
    not_secure = [
        (request, value.split("=", 1)[0])
        for request, value in seen
        if "secure" not in _cookie_attributes(value)
    ]
    assert not_secure == []
    assert all({"httponly", "samesite"} <= _cookie_attributes(value) for _, value in seen)


async def test_without_a_public_url_a_cookie_is_secure_over_https_only(store, tenant):
    app = http_app(store)
    answers = {}
    for scheme in ("http", "https"):
        async with rest_client(app, base_url=f"{scheme}://127.0.0.1") as client:
            answers[scheme] = (await client.get("/dashboard/sign-in")).headers["set-cookie"]
    assert "secure" not in _cookie_attributes(answers["http"])  # one machine, plain http: sign-in still works
    assert "secure" in _cookie_attributes(answers["https"])


def test_a_proxy_list_entry_that_is_not_an_address_is_refused_at_startup():
    with pytest.raises(
        ValueError, match="BLOHKO_FORWARDED_ALLOW_IPS: 'proxy.internal' is not an IP address or network"
    ):
        Settings(forwarded_allow_ips=["10.0.0.0/24", "proxy.internal"])
    with pytest.raises(ValueError, match="BLOHKO_PUBLIC_URL: 'https://user@school.example.com' must be http"):
        Settings(public_url="https://user@school.example.com")
    assert Settings(forwarded_allow_ips=["*"]).forwarded_allow_ips == ["*"]
    assert Settings().forwarded_allow_ips == ["127.0.0.1", "::1"]


# ---- a real `blohko serve --http`: which addresses may speak for the client

PROXY = "127.0.0.2"  # the configured proxy; the test's other requests come from 127.0.0.1


def _from(address: str) -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(local_address=address), timeout=10, follow_redirects=False
    )


def _failed_sign_ins(client: httpx.Client, url: str, forged_addresses: list[str]) -> list[int]:
    """One failed sign-in per forged `X-Forwarded-For` address (each for another unknown email)."""
    return [
        client.post(
            f"{url}/api/v1/auth/login",
            json={"email": f"nobody{n}@example.com", "password": "wrong-password"},
            headers={"X-Forwarded-For": forged},
        ).status_code
        for n, forged in enumerate(forged_addresses)
    ]


def test_forwarded_headers_count_only_from_the_configured_proxies(databases, tmp_path):
    env = cli_env(
        databases.new("forwarded"),
        BLOHKO_FORWARDED_ALLOW_IPS=f'["{PROXY}"]',
        BLOHKO_LOGIN_FAILURES_PER_ADDRESS="2",
        BLOHKO_LOGIN_FAILURES_PER_ACCOUNT="100",
    )
    run_cli(env, "db", "upgrade")
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    with (
        http_server(env, tmp_path / "http.log") as server,
        _from("127.0.0.1") as direct,
        _from(PROXY) as proxy,
    ):
        # The scheme: the sign-in form's cookie is Secure, and a redirect names https, only when the proxy says so.
        direct_cookie = direct.get(f"{server.url}/dashboard/sign-in", headers=forged).headers["set-cookie"]
        proxied_cookie = proxy.get(f"{server.url}/dashboard/sign-in", headers=forged).headers["set-cookie"]
        direct_redirect = direct.get(f"{server.url}/dashboard/", headers=forged).headers["location"]
        proxied_redirect = proxy.get(f"{server.url}/dashboard/", headers=forged).headers["location"]
        # The client address: rotating X-Forwarded-For does not escape the per-address sign-in throttle
        # from anywhere but the proxy, where each address is the client's own.
        direct_sign_ins = _failed_sign_ins(
            direct, server.url, ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]
        )
        proxied_sign_ins = _failed_sign_ins(
            proxy, server.url, ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]
        )
    assert "secure" not in _cookie_attributes(direct_cookie)
    assert "secure" in _cookie_attributes(proxied_cookie)
    assert direct_redirect.startswith("http://127.0.0.1:") and proxied_redirect.startswith(
        "https://127.0.0.1:"
    )
    assert direct_sign_ins == [401, 401, 429, 429]
    assert proxied_sign_ins == [401, 401, 401, 401]


def test_the_public_url_is_the_configured_one_or_the_bound_address():
    assert (
        Settings(public_url="https://school.example.com/").effective_public_url()
        == "https://school.example.com"
    )
    assert Settings(host="0.0.0.0", port=9000).effective_public_url() == "http://127.0.0.1:9000"
    assert Settings(host="10.1.2.3").effective_public_url() == "http://10.1.2.3:8000"
    assert Settings(host="fd00::5").effective_public_url() == "http://[fd00::5]:8000"
    assert Settings(public_url="https://school.example.com").cookies_always_secure()
    assert not Settings().cookies_always_secure()
