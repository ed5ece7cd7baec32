"""`resources/list` and `resources/read` of every MCP Apps view over stdio and over HTTP, against real
`blohko serve` processes: the full-access key gets every view as committed, a narrower key only the
views of the tools it may call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import TextResourceContents

from server.views import VIEW_MIME_TYPE, VIEWS
from tests.support.processes import BLOHKO, cli_json, cli_key, http_server, upgraded_env


@pytest.fixture(scope="module")
def env(databases):
    return upgraded_env(databases.new("views-processes"))


@pytest.fixture(scope="module")
def keys(env) -> dict[str, str]:
    producer = cli_json(
        env, "producers", "create", "--name", "Views Academy", "--email", "owner@views.example"
    )

    return {
        "full": cli_key(env, producer["id"], "*"),
        "communities": cli_key(env, producer["id"], "communities:read"),
    }


@pytest.fixture(scope="module")
def server(env, tmp_path_factory):
    with http_server(env, tmp_path_factory.mktemp("logs") / "http.log") as running:
        yield running


@asynccontextmanager
async def _client(transport: str, env, server_url: str | None, key: str) -> AsyncIterator[Client]:
    if transport == "stdio":
        async with Client(
            StdioServerParameters(command=BLOHKO, args=["serve"], env={**env, "BLOHKO_API_KEY": key})
        ) as client:
            yield client
        return
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(f"{server_url}/mcp", http_client=http)) as client,
    ):
        yield client


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_every_view_is_listed_and_read_as_committed(transport, env, keys, request):
    url = request.getfixturevalue("server").url if transport == "http" else None
    async with _client(transport, env, url, keys["full"]) as client:
        listed = {str(resource.uri): resource for resource in (await client.list_resources()).resources}
        assert set(listed) == {view.uri for view in VIEWS}
        for view in VIEWS:
            assert listed[view.uri].mime_type == VIEW_MIME_TYPE
            [content] = (await client.read_resource(view.uri)).contents
            assert isinstance(content, TextResourceContents)
            assert content.mime_type == VIEW_MIME_TYPE
            assert content.text == view.html()
            assert content.meta is not None and content.meta["ui"]["csp"]["connectDomains"] == []


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_narrow_key_sees_only_its_views(transport, env, keys, request):
    url = request.getfixturevalue("server").url if transport == "http" else None
    async with _client(transport, env, url, keys["communities"]) as client:
        listed = {str(resource.uri) for resource in (await client.list_resources()).resources}
        assert listed == {"ui://blohko/thread", "ui://blohko/report"}
        with pytest.raises(MCPError, match="Unknown resource: ui://blohko/course"):
            await client.read_resource("ui://blohko/course")
