"""`blohko demo`: a demo producer with sample data (created once) and a fresh full-access key."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server import demo_school, sample_data
from storage.engine import Store
from tools.core.context import OPERATOR, Principal
from tools.core.errors import NotFound

__all__ = ["DEMO_EMAIL", "Demo", "client_configs", "ensure_demo"]

DEMO_EMAIL = "demo@blohko.example"
DEMO_PASSWORD = "demo-password"
_DEMO_KEY_NAME = "demo (full access)"


@dataclass(frozen=True)
class Demo:
    producer_id: str
    key: str
    created: bool


async def ensure_demo(store: Store) -> Demo:
    """Create the demo producer and its data on first run; every run issues a new demo key and
    revokes the previous one, since keys are stored only as hashes and cannot be shown again.
    Every step is a catalog operation run as the machine's operator (audited like any other)."""

    async def operate(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await sample_data.operate(store, OPERATOR, name, arguments)

    try:
        producer = (await operate("find_producer", {"email": DEMO_EMAIL}))["producer"]
        created = False
    except NotFound:
        made = await operate("create_producer", {"name": "Blohko Demo Academy", "email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        producer, created = made["producer"], True
    listed = await operate("list_api_keys", {"producerId": producer["id"], "limit": 100})
    for old in listed["data"]:
        if old["name"] == _DEMO_KEY_NAME and old["revokedAt"] is None:
            await operate("revoke_api_key", {"id": old["id"]})
    new_key = (await operate("create_api_key", {"producerId": producer["id"], "name": _DEMO_KEY_NAME, "permissions": ["*"]}))["apiKey"]
    if created:
        principal = Principal(producer_id=producer["id"], key_id=new_key["id"], key_name=_DEMO_KEY_NAME, grants=("*",))
        await demo_school.create_demo_school(store, principal, owner_user_id=producer["ownerUserId"])
    return Demo(producer_id=producer["id"], key=new_key["key"], created=created)


def _blohko_command() -> str:
    """The absolute path of the running `blohko` script, so a desktop client finds this install."""
    launched = Path(sys.argv[0]).resolve()
    return str(launched) if launched.name == "blohko" and launched.exists() else "blohko"


def client_configs(demo: Demo, *, url: str, database_url: str) -> str:
    """Ready-to-paste configurations for the common MCP clients."""
    desktop = {
        "mcpServers": {
            "blohko": {
                "command": _blohko_command(),
                "args": ["serve"],
                "env": {"BLOHKO_API_KEY": demo.key, "BLOHKO_DATABASE_URL": database_url},
            }
        }
    }
    return f"""
Blohko demo is ready (producer {demo.producer_id}).

API key (full access, shown once; a new one is issued each time `blohko demo` runs):
  {demo.key}

MCP over HTTP:   {url}/mcp      (Authorization: Bearer <key>)
REST API:        {url}/api/v1   e.g. curl -H "Authorization: Bearer {demo.key}" {url}/api/v1/students
Health check:    {url}/healthz
Dashboard:       {url}/dashboard   (API keys, agents, activity)
  Sign in with:  {DEMO_EMAIL} / {DEMO_PASSWORD}

Claude Code:
  claude mcp add --transport http blohko {url}/mcp --header "Authorization: Bearer {demo.key}"

Claude Desktop (claude_desktop_config.json), stdio on the same database:
{json.dumps(desktop, indent=2)}

"""
