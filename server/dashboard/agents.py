"""Ready-to-paste MCP client configurations for this server's streamable HTTP endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["KEY_PLACEHOLDER", "ClientConfig", "client_configs"]

KEY_PLACEHOLDER = "blk_..."


@dataclass(frozen=True)
class ClientConfig:
    slug: str
    client: str
    where: str
    text: str


def _json(value: object) -> str:
    return json.dumps(value, indent=2)


def client_configs(mcp_url: str, key: str | None) -> list[ClientConfig]:
    """Configurations for the common clients, with `key` or the `blk_...` placeholder."""
    key = key or KEY_PLACEHOLDER
    header = f"Bearer {key}"
    remote = {"url": mcp_url, "headers": {"Authorization": header}}
    return [
        ClientConfig(
            "claude-code",
            "Claude Code",
            "Run in a terminal:",
            f'claude mcp add --transport http blohko {mcp_url} --header "Authorization: {header}"',
        ),
        ClientConfig(
            "claude-desktop",
            "Claude Desktop",
            "Settings → Developer → Edit Config (claude_desktop_config.json); it reaches the remote server "
            "through the mcp-remote bridge, which needs Node.js:",
            _json(
                {
                    "mcpServers": {
                        "blohko": {
                            "command": "npx",
                            "args": ["-y", "mcp-remote", mcp_url, "--header", "Authorization:${BLOHKO_AUTH}"],
                            "env": {"BLOHKO_AUTH": header},
                        }
                    }
                }
            ),
        ),
        ClientConfig(
            "cursor",
            "Cursor",
            "~/.cursor/mcp.json, or .cursor/mcp.json in a project:",
            _json({"mcpServers": {"blohko": remote}}),
        ),
        ClientConfig(
            "vscode",
            "VS Code",
            ".vscode/mcp.json in a workspace (or MCP: Open User Configuration):",
            _json({"servers": {"blohko": {"type": "http", **remote}}}),
        ),
        ClientConfig(
            "http",
            "Any streamable-HTTP client",
            "Agent frameworks, bots and hosted agents: POST JSON-RPC to the URL with the header.",
            f"URL:    {mcp_url}\nHeader: Authorization: {header}",
        ),
    ]
