"""Behind a real TLS-terminating reverse proxy: Debian's Caddy runs
docs/deploy/Caddyfile, the README's configuration, as it is (its certificates from Caddy's own
authority, `local_certs`, kept in the test's temporary folder), in front of a real
`blohko serve --http` with `BLOHKO_PUBLIC_URL=https://localhost:<caddy port>`. Through it: the
owner signs in and consents in Chromium, a real MCP client gets its OAuth token and calls a tool,
the Connect page shows the public URL, and every cookie is `Secure`. Sent straight to the server
from an address that is not a trusted proxy, a forged `Host`, `X-Forwarded-Proto` or
`X-Forwarded-For` changes nothing.

Addresses: the server listens on 127.0.0.1 and trusts the default proxies, loopback's 127.0.0.1
and ::1 (`BLOHKO_FORWARDED_ALLOW_IPS`), where Caddy connects from; the forger connects from
127.0.0.2, which is loopback too but not in the list: any other machine, as far as the server
can tell.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.oauth import local_http_server, tools_of
from tests.support.oauth_clients import (
    GRANTED,
    MemoryTokens,
    browser_oauth_client,
    sign_in_and_consent,
)
from tests.support.processes import cli_env, free_port, http_server, run_cli, stop

CADDY = shutil.which("caddy")
CADDYFILE = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "Caddyfile"
FORGER = "127.0.0.2"

pytestmark = [
    pytest.mark.skipif(CADDY is None, reason="needs Caddy (apt-get install caddy; .ci/run installs it)"),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
    ),
]


@dataclass
class Proxy:
    url: str
    root_certificate: Path
    log_path: Path

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts Caddy's own root certificate, and nothing else."""
        return ssl.create_default_context(cafile=str(self.root_certificate))


@contextmanager
def caddy(folder: Path, *, port: int, upstream: str) -> Iterator[Proxy]:
    """Caddy serving docs/deploy/Caddyfile for `https://localhost:<port>` in front of `upstream`,
    everything it keeps under `folder` (its own HOME and XDG folders; its root is trusted nowhere)."""
    folder.mkdir()
    # Test-only global options: loopback only, no admin endpoint, the certificate from Caddy's local
    # authority (the README's setup gets one by ACME), the redirect port out of the way.
    config = folder / "Caddyfile"
    config.write_text(
        "{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\tdefault_bind 127.0.0.1\n"
        f"\thttp_port {free_port()}\n\thttps_port {port}\n}}\nimport {CADDYFILE}\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder / "home"),
        "XDG_DATA_HOME": str(folder / "data"),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "BLOHKO_SITE": f"localhost:{port}",
        "BLOHKO_UPSTREAM": upstream,
    }
    assert CADDY is not None, "the module is skipped without Caddy"
    log_path = folder / "caddy.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proxy = Proxy(
        f"https://localhost:{port}",
        folder / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt",
        log_path,
    )
    try:
        _wait_for(proxy, process)
        yield proxy
    finally:
        stop(process)


def _wait_for(proxy: Proxy, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"caddy exited {process.returncode}:\n{proxy.log_path.read_text()}")
        if proxy.root_certificate.exists():
            try:
                if (
                    httpx.get(f"{proxy.url}/healthz", verify=proxy.ssl_context(), timeout=5).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.2)  # Caddy, a real process, is starting
    raise AssertionError(f"caddy did not serve {proxy.url} within {timeout}s:\n{proxy.log_path.read_text()}")


@dataclass
class Deployment:
    proxy: Proxy
    server_url: str
    server_log: Path


@pytest.fixture
def deployment(databases, tmp_path) -> Iterator[Deployment]:
    proxy_port, server_port = free_port(), free_port()
    env = cli_env(
        databases.new("tls-proxy"),
        BLOHKO_PUBLIC_URL=f"https://localhost:{proxy_port}",
        BLOHKO_LOGIN_FAILURES_PER_ADDRESS="3",
        BLOHKO_LOGIN_FAILURES_PER_ACCOUNT="100",
    )
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "--no-serve")  # the demo school and its owner's sign-in
    with (
        http_server(env, tmp_path / "http.log", port=server_port) as server,
        caddy(tmp_path / "caddy", port=proxy_port, upstream=f"127.0.0.1:{server_port}") as proxy,
    ):
        yield Deployment(proxy, server.url, server.log_path)


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = tmp_path / "tls-proxy-screenshots"
    folder.mkdir()
    print(f"\ntls proxy screenshots: {folder}")
    return folder


@asynccontextmanager
async def browser_page():
    """Chromium, which cannot be told Caddy's root here: it skips certificate checks (only it)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1100, "height": 900}, ignore_https_errors=True)
        try:
            yield context, await context.new_page()
        finally:
            await browser.close()


def _attributes(set_cookie: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in set_cookie.split(";")[1:]}


async def test_sign_in_oauth_consent_and_an_mcp_call_work_through_caddy_with_only_secure_cookies(
    deployment, shots
):
    proxy = deployment.proxy
    responses = []  # every response the browser got, to read its Set-Cookie headers
    requested: list[str] = []
    with local_http_server({}, requested) as callback_base:
        redirect_uri = f"{callback_base}/callback"
        async with browser_page() as (context, page):
            page.on("response", lambda response: responses.append(response))

            async def open_browser(authorization_url: str) -> None:
                assert authorization_url.startswith(f"{proxy.url}/authorize?")
                await sign_in_and_consent(
                    page,
                    authorization_url,
                    client_name="Proxied Agent",
                    redirect_uri=redirect_uri,
                    shots=shots,
                )

            tokens = MemoryTokens()
            auth = browser_oauth_client(
                f"{proxy.url}/mcp",
                client_name="Proxied Agent",
                redirect_uri=redirect_uri,
                tokens=tokens,
                requested=requested,
                open_browser=open_browser,
            )
            async with (
                httpx2.AsyncClient(auth=auth, timeout=30, verify=proxy.ssl_context()) as http,
                Client(streamable_http_client(f"{proxy.url}/mcp", http_client=http)) as client,
            ):
                listed = {tool.name for tool in (await client.list_tools()).tools}
                called = await client.call_tool("list_courses", {})

            # The Connect page's configs name the public URL.
            await page.goto(f"{proxy.url}/dashboard/connect")
            connect_text = await page.locator("main").inner_text()
            await page.screenshot(path=str(shots / "connect.png"), full_page=True)
            # Sign out: the session cookie is cleared, Secure too.
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(f"{proxy.url}/dashboard/sign-in?signed_out=1")
            cookies_left = await context.cookies()
            set_cookies = [
                (response.url, value)
                for response in responses
                for value in await response.header_values("set-cookie")
            ]

    assert listed == tools_of(GRANTED)
    assert not called.is_error and "data" in called.structured_content
    assert tokens.tokens is not None and tokens.tokens.access_token.startswith("blo_")
    assert f"{proxy.url}/mcp" in connect_text and "127.0.0.1" not in connect_text
    # Every Set-Cookie came through Caddy, Secure; the sign-in set, used and cleared both cookies.
    assert all(url.startswith(proxy.url) for url, _ in set_cookies)
    assert {value.split("=", 1)[0] for _, value in set_cookies} == {"blohko_sign_in", "blohko_session"}
    assert [value.split("=", 1)[0] for _, value in set_cookies if "secure" not in _attributes(value)] == []
    assert all(cookie.get("secure") for cookie in cookies_left)


def _forger() -> httpx.Client:
    """A client on 127.0.0.2: not a trusted proxy."""
    return httpx.Client(
        transport=httpx.HTTPTransport(local_address=FORGER), timeout=10, follow_redirects=False
    )


def test_forged_host_and_forwarded_headers_sent_around_the_proxy_change_nothing(deployment):
    proxy, server_url = deployment.proxy, deployment.server_url
    port = server_url.rsplit(":", 1)[1]
    forged_proto = {"X-Forwarded-Proto": "https", "Host": f"localhost:{port}"}
    mcp = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    with (
        _forger() as forger,
        httpx.Client(verify=proxy.ssl_context(), timeout=10, follow_redirects=False) as browser,
    ):
        hostile = {
            host: (
                forger.get(f"{server_url}/api/v1/openapi.json", headers={"Host": host}).status_code,
                forger.post(
                    f"{server_url}/mcp",
                    json=mcp,
                    headers={"Host": host, "Accept": "application/json, text/event-stream"},
                ).status_code,
                forger.get(f"{server_url}/dashboard/sign-in", headers={"Host": host}).status_code,
            )
            for host in (
                "localhost:80@evil.example",
                f"127.0.0.1:{port}.evil.example",
                f"localhost.evil.example:{port}",
                f"[::1]:{port}:80",
            )
        }
        # Scheme: Starlette's trailing-slash redirect names the scheme it believes. Through Caddy
        # (trusted) https; straight from the forger, http whatever its X-Forwarded-Proto says.
        proxied_redirect = browser.get(f"{proxy.url}/dashboard/").headers["location"]
        forged_redirect = forger.get(f"{server_url}/dashboard/", headers=forged_proto).headers["location"]
        # Even straight to the server over plain http, the public URL is https: the cookie is Secure.
        forged_cookie = forger.get(f"{server_url}/dashboard/sign-in", headers=forged_proto).headers[
            "set-cookie"
        ]
        # Client address: a rotating X-Forwarded-For does not escape the per-address sign-in
        # throttle (3 failures) for the forger...
        forged_sign_ins = [
            forger.post(
                f"{server_url}/api/v1/auth/login",
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
                json={"email": f"nobody{n}@example.com", "password": "wrong-password"},
            ).status_code
            for n in range(5)
        ]
        # ...while through Caddy, the client's own address counts, not the forger's.
        proxied_sign_in = browser.post(
            f"{proxy.url}/api/v1/auth/login",
            json={"email": "nobody@example.com", "password": "wrong-password"},
        )
    assert hostile == dict.fromkeys(hostile, (421, 421, 421))
    assert proxied_redirect == f"{proxy.url}/dashboard"
    assert forged_redirect == f"http://localhost:{port}/dashboard"
    assert "secure" in _attributes(forged_cookie)
    assert forged_sign_ins == [401, 401, 401, 429, 429]
    assert proxied_sign_in.status_code == 401
