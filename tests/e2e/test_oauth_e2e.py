"""OAuth end to end: a real `blohko serve --http` process, a real MCP client's OAuth
support registering itself and running the authorization code flow with PKCE, and the owner's
sign-in and consent done in real Chromium (Debian's, driven by Playwright). The client then sees
exactly the granted tools, calls one, and after "Disconnect" in the dashboard its token gets 401.
Two clients: the MCP Python SDK's (`mcp.client.auth`) and the TypeScript SDK's
(tests/node/oauth_client.mjs)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.node_tools import DRIVERS, ROOT
from tests.support.oauth import local_http_server, query_of, tools_of
from tests.support.oauth_clients import (
    GRANTED,
    MemoryTokens,
    browser_oauth_client,
    callback_query,
    sign_in_and_consent,
)
from tests.support.processes import cli_env, http_server, run_cli

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
    ),
]


@pytest.fixture
def server(databases, tmp_path):
    env = cli_env(databases.new("oauth-e2e"))
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "--no-serve")  # the demo school and its owner's sign-in
    with http_server(env, tmp_path / "http.log") as running:
        yield running


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = tmp_path / "oauth-screenshots"
    folder.mkdir()
    print(f"\noauth screenshots: {folder}")
    return folder


@asynccontextmanager
async def owner_browser() -> AsyncIterator:
    """A Chromium page for the school's owner, accepting the dashboard's confirmation dialogs."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": 1100, "height": 900})).new_page()

        async def confirm(dialog) -> None:  # the disconnect confirmation
            await dialog.accept()

        page.on("dialog", confirm)
        try:
            yield page
        finally:
            await browser.close()


async def disconnect_in_dashboard(page, server_url: str, client_name: str, shots: Path) -> None:
    await page.goto(f"{server_url}/dashboard/apps")
    row = page.locator("tr.app-row", has_text=client_name)
    assert "courses:read" in await row.inner_text()
    await page.screenshot(path=str(shots / "connected-apps.png"), full_page=True)
    await row.get_by_role("button", name="Disconnect").click()
    await page.wait_for_url(re.compile(r"/dashboard/apps\?done=disconnected"))


def assert_token_refused(server_url: str, access_token: str) -> None:
    refused = httpx.post(
        f"{server_url}/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "list_courses", "arguments": {}},
        },
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream"},
        timeout=10,
    )
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert "resource_metadata=" in refused.headers["www-authenticate"]


async def test_a_real_mcp_client_connects_over_oauth_with_sign_in_and_consent_in_chromium(server, shots):
    requested: list[str] = []  # what the browser brought to the app's redirect URI
    with local_http_server({}, requested) as callback_base:
        redirect_uri = f"{callback_base}/callback"
        async with owner_browser() as page:

            async def open_browser(authorization_url: str) -> None:
                await sign_in_and_consent(
                    page, authorization_url, client_name="E2E Agent", redirect_uri=redirect_uri, shots=shots
                )

            tokens = MemoryTokens()
            auth = browser_oauth_client(
                f"{server.url}/mcp",
                client_name="E2E Agent",
                redirect_uri=redirect_uri,
                tokens=tokens,
                requested=requested,
                open_browser=open_browser,
            )
            async with (
                httpx2.AsyncClient(auth=auth, timeout=30) as http,
                Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
            ):
                listed = {tool.name for tool in (await client.list_tools()).tools}
                called = await client.call_tool("list_courses", {})
            assert listed == tools_of(GRANTED)
            assert not called.is_error and "data" in called.structured_content
            assert tokens.tokens is not None and tokens.tokens.access_token.startswith("blo_")
            assert tokens.client is not None and tokens.client.client_id

            # The owner disconnects the app on the dashboard: the app's next call gets 401.
            await disconnect_in_dashboard(page, server.url, "E2E Agent", shots)

    assert_token_refused(server.url, tokens.tokens.access_token)


class NodeDriver:
    """A Node program speaking JSON lines on stdout and reading lines on stdin; stderr goes to a
    file (a pipe nobody reads could fill and stall it) and is shown when a step fails."""

    def __init__(self, process: Process, stderr: Path) -> None:
        assert process.stdin is not None and process.stdout is not None, "opened with both piped"
        self.process = process
        self.stdin = process.stdin
        self.stderr = stderr
        self.stdout = BufferedByteReceiveStream(process.stdout)

    async def read_json(self, *, within: float) -> dict:
        with anyio.move_on_after(within):
            try:
                return json.loads(await self.stdout.receive_until(b"\n", 1 << 20))
            except anyio.IncompleteRead:
                await self.process.wait()
                pytest.fail(
                    f"the driver exited {self.process.returncode} before answering:\n{self.stderr.read_text()}"
                )
        pytest.fail(f"the driver said nothing for {within}s:\n{self.stderr.read_text()}")

    async def write_line(self, text: str) -> None:
        await self.stdin.send(f"{text}\n".encode())


@asynccontextmanager
async def node_driver(node_tools, script: str, *args: str, stderr: Path) -> AsyncIterator[NodeDriver]:
    with stderr.open("wb") as errors:
        process = await anyio.open_process(
            [str(node_tools.node), str(DRIVERS / script), *args], cwd=ROOT, env=node_tools.env, stderr=errors
        )
    try:
        yield NodeDriver(process, stderr)
    finally:
        # A test that failed midway must not wait on a driver still waiting on it.
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
        await process.aclose()


async def test_the_typescript_sdk_oauth_client_connects_with_sign_in_and_consent_in_chromium(
    server, node_tools, shots, tmp_path
):
    client_name = "TypeScript Agent"
    requested: list[str] = []
    with local_http_server({}, requested) as callback_base:
        redirect_uri = f"{callback_base}/callback"
        async with (
            node_driver(
                node_tools,
                "oauth_client.mjs",
                f"{server.url}/mcp",
                redirect_uri,
                client_name,
                stderr=tmp_path / "oauth_client.stderr",
            ) as driver,
            owner_browser() as page,
        ):
            authorization_url = (await driver.read_json(within=30))["authorize"]
            asked = query_of(authorization_url)
            assert (
                asked["resource"] == f"{server.url}/mcp"
            )  # RFC 8707: the token is asked for the MCP endpoint
            with anyio.fail_after(60):
                await sign_in_and_consent(
                    page, authorization_url, client_name=client_name, redirect_uri=redirect_uri, shots=shots
                )
            answer = callback_query(requested)
            # The SDK leaves checking the state to its host: the redirect must bring back what was sent.
            assert answer["state"] == asked["state"]
            await driver.write_line(answer["code"])
            seen = await driver.read_json(within=30)
            with anyio.fail_after(10):
                assert await driver.process.wait() == 0, driver.stderr.read_text()
            assert set(seen["tools"]) == tools_of(GRANTED)
            assert seen["called"] is True
            assert seen["accessToken"].startswith("blo_")
            # It registered itself at /register (it has no client ID metadata document URL), which
            # is where the consent page's heading found its name, and authorized as that client.
            assert seen["clientId"] == asked["client_id"]

            with anyio.fail_after(60):
                await disconnect_in_dashboard(page, server.url, client_name, shots)

    assert_token_refused(server.url, seen["accessToken"])
