"""The SDK floor: a bare `MCPServer` with one no-op tool, over stdio or streamable HTTP.

Run as a script (`python benchmarks/bare_server.py [--http PORT]`) so its cold start imports only
what the SDK needs, exactly like a minimal server a user would write.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer


def create_bare_server() -> MCPServer:
    # Logs at WARNING like the Blohko servers of the benchmark: the SDK's default INFO logs a
    # line per HTTP request, which would slow the floor down and flatter the ratios.
    server = MCPServer("bare", log_level="WARNING")

    @server.tool()
    async def noop() -> str:
        """Does nothing."""
        return "ok"

    return server


def _serve_http(server: MCPServer, port: int) -> None:
    import uvicorn

    app = server.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        _serve_http(create_bare_server(), int(sys.argv[2]))
    else:
        create_bare_server().run("stdio")
