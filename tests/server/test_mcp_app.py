"""The MCP server beyond its tools: it serves no resources, and refuses a request for an unknown
prompt or resource the way the protocol refuses any unknown name (its prompts: test_prompts.py)."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from tests.support.factories import mcp_client
from tests.support.rest import bearer, rest_client


async def test_an_unknown_prompt_is_invalid_params_like_an_unknown_resource(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        with pytest.raises(MCPError) as prompt:
            await client.get_prompt("no_such_prompt", {"topic": "x"})
        with pytest.raises(MCPError) as resource:
            await client.read_resource("blohko://no-such-resource")
    assert (prompt.value.error.code, resource.value.error.code) == (INVALID_PARAMS, INVALID_PARAMS)
    assert prompt.value.error.message == "Unknown prompt: no_such_prompt"


async def test_an_unknown_prompt_over_streamable_http_is_invalid_params(app, tenant):
    # Over HTTP the SDK's own answer carried JSON-RPC code 0, which no client can act on.
    request = {"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "no_such_prompt"}}
    headers = {**bearer(tenant.key), "Accept": "application/json, text/event-stream"}
    async with app.router.lifespan_context(app), rest_client(app, base_url="http://127.0.0.1") as http:
        response = await http.post("/mcp", json=request, headers=headers)
    assert response.json()["error"] == {"code": INVALID_PARAMS, "message": "Unknown prompt: no_such_prompt"}
