"""The HTTP app's `/mcp`: stateless JSON-RPC over POST, and nothing that holds a connection open."""

from __future__ import annotations

import anyio
import pytest

from tests.support.rest import rest_client


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_on_mcp_answer_405_allowing_only_post_at_once(app, tenant, method):
    # Stateless: no session to end, and no stream that a server message could ever reach
    # (the MCP spec: a server that offers no SSE stream MUST answer GET with 405).
    headers = {"Accept": "text/event-stream", "Mcp-Session-Id": "none"}
    async with (
        app.router.lifespan_context(app),
        rest_client(app, tenant.key, base_url="http://127.0.0.1") as http,
    ):
        with anyio.fail_after(5):  # an event stream GET would never end
            response = await http.request(method, "/mcp", headers=headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json() == {"error": "bad_request", "message": f"Method {method} is not allowed on /mcp"}
