"""One MCP JSON-RPC request over HTTP, as a test sends it without an MCP client: the `/mcp` POST
of the in-process app (OAuth tests), of a real server process (the end-to-end tests), and the
`tools/call` that expects a tool's structured result."""

from __future__ import annotations

import httpx

__all__ = ["MCP_HEADERS", "call_tool", "mcp_post"]

MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


async def mcp_post(
    client: httpx.AsyncClient,
    access_token: str | None,
    method: str = "tools/list",
    params: dict | None = None,
    *,
    url: str = "/mcp",
    request_id: int = 1,
) -> httpx.Response:
    """POST one JSON-RPC request to `url` (the client's `/mcp` unless a server's whole URL)."""
    headers = dict(MCP_HEADERS)
    if access_token:
        headers["Authorization"] = f"Bearer {access_token}"
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
    return await client.post(url, json=body, headers=headers)


async def call_tool(client: httpx.AsyncClient, base_url: str, key: str, name: str, arguments: dict) -> dict:
    """A `tools/call` on the server at `base_url`: the tool's structured result; fails the test on
    any error."""
    answer = await mcp_post(
        client, key, "tools/call", {"name": name, "arguments": arguments}, url=f"{base_url}/mcp"
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert not result.get("isError"), result
    return result["structuredContent"]
