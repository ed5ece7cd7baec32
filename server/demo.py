"""`blohko demo`: a demo producer with sample data (created once) and a full-access key.

Every run prints a fresh key, because keys are stored only as hashes and the one an earlier run
printed cannot be shown again. The earlier demo keys keep working, so the client configs pasted
from an earlier run keep working too; `--new-key` (`revoke_earlier`) revokes them, and says so."""

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
    """The key this run issued (full access), shown this once."""
    created: bool
    """Whether this run created the demo producer and its data (its first run on this store)."""
    earlier_keys: tuple[str, ...] = ()
    """The prefixes of the demo keys earlier runs issued that still work."""
    revoked_keys: tuple[str, ...] = ()
    """The prefixes of the earlier demo keys this run revoked (`--new-key`)."""


async def ensure_demo(store: Store, *, revoke_earlier: bool = False) -> Demo:
    """Create the demo producer and its data on first run, and issue a new full-access demo key.
    The demo keys earlier runs issued stay valid unless `revoke_earlier`. Every step is a
    catalog operation run as the machine's operator (audited like any other)."""

    async def operate(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await sample_data.operate(store, OPERATOR, name, arguments)

    try:
        producer = (await operate("find_producer", {"email": DEMO_EMAIL}))["producer"]
        created = False
    except NotFound:
        made = await operate(
            "create_producer", {"name": "Blohko Demo Academy", "email": DEMO_EMAIL, "password": DEMO_PASSWORD}
        )
        producer, created = made["producer"], True
    earlier = [key for key in await _demo_keys(operate, producer["id"]) if key["revokedAt"] is None]
    revoked: list[str] = []
    if revoke_earlier:
        for old in earlier:
            await operate("revoke_api_key", {"id": old["id"]})
            revoked.append(old["prefix"])
        earlier = []
    new_key = (
        await operate(
            "create_api_key", {"producerId": producer["id"], "name": _DEMO_KEY_NAME, "permissions": ["*"]}
        )
    )["apiKey"]
    if created:
        principal = Principal(
            producer_id=producer["id"], key_id=new_key["id"], key_name=_DEMO_KEY_NAME, grants=("*",)
        )
        await demo_school.create_demo_school(store, principal, owner_user_id=producer["ownerUserId"])
    return Demo(
        producer_id=producer["id"],
        key=new_key["key"],
        created=created,
        earlier_keys=tuple(key["prefix"] for key in earlier),
        revoked_keys=tuple(revoked),
    )


async def _demo_keys(operate, producer_id: str) -> list[dict[str, Any]]:
    """Every key the demo runs issued (by name), revoked ones included: all pages."""
    keys: list[dict[str, Any]] = []
    page = 1
    while True:
        listed = await operate("list_api_keys", {"producerId": producer_id, "page": page, "limit": 100})
        keys += [key for key in listed["data"] if key["name"] == _DEMO_KEY_NAME]
        if not listed["pagination"]["hasMore"]:
            return keys
        page += 1


def _key_notes(demo: Demo) -> str:
    """What became of the keys earlier runs printed."""
    if demo.revoked_keys:
        prefixes = ", ".join(f"{prefix}..." for prefix in demo.revoked_keys)
        return (
            f"Revoked the earlier demo key(s) {prefixes} (--new-key): configs that use them stop working.\n"
        )
    if demo.earlier_keys:
        prefixes = ", ".join(f"{prefix}..." for prefix in demo.earlier_keys)
        return (
            f"The demo key(s) earlier runs printed still work ({prefixes}); this one is another. "
            "`blohko demo --new-key` revokes the earlier ones.\n"
        )
    return ""


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

API key (full access, shown once; each run of `blohko demo` prints a new one):
  {demo.key}
{_key_notes(demo)}
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
