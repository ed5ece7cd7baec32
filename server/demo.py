"""`blohko demo`: a demo producer with sample data (created once) and a fresh full-access key."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import update

from storage import accounts as accounts_store
from storage.engine import Store
from storage.ids import utcnow
from storage.tables import ApiKey
from tools.accounts import create_api_key, create_producer, normalize_email
from tools.context import Principal
from tools.registry import OPERATIONS_BY_NAME
from tools.runner import run_operation

__all__ = ["DEMO_EMAIL", "Demo", "client_configs", "ensure_demo"]

DEMO_EMAIL = "demo@blohko.example"
DEMO_PASSWORD = "demo-password"
_DEMO_KEY_NAME = "demo (full access)"

_SAMPLE_STUDENTS = [
    ("Jane Smith", "jane@example.com", "Frontend developer learning TypeScript."),
    ("Ravi Patel", "ravi@example.com", "Data analyst moving into data science."),
    ("Amara Okafor", "amara@example.com", None),
    ("Lucas Moreau", "lucas@example.com", "Photographer and video editor."),
]


@dataclass(frozen=True)
class Demo:
    producer_id: str
    key: str
    created: bool


async def _create_sample_data(store: Store, principal: Principal) -> None:
    for name, email, bio in _SAMPLE_STUDENTS:
        await run_operation(
            OPERATIONS_BY_NAME["register_student"],
            {"name": name, "email": email, "password": "student-pass-1", "bio": bio},
            store=store,
            principal=principal,
        )


async def ensure_demo(store: Store) -> Demo:
    """Create the demo producer and its data on first run; every run issues a new demo key and
    revokes the previous one, since keys are stored only as hashes and cannot be shown again."""
    async with store.sessions() as session, session.begin():
        owner = await accounts_store.get_user_by_email(
            session, producer_id=None, email_normalized=normalize_email(DEMO_EMAIL)
        )
        created = owner is None
        if owner is None:
            made = await create_producer(
                session, name="Blohko Demo Academy", email=DEMO_EMAIL, password=DEMO_PASSWORD, clock=utcnow
            )
            producer_id = made.producer.id
        else:
            producer_id = owner.producer_id
        await session.execute(
            update(ApiKey)
            .where(ApiKey.producer_id == producer_id, ApiKey.name == _DEMO_KEY_NAME, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        new_key = await create_api_key(
            session, producer_id=producer_id, name=_DEMO_KEY_NAME, permissions=["*"], clock=utcnow
        )
    if created:
        principal = Principal(producer_id=producer_id, key_id=new_key.api_key.id, key_name=_DEMO_KEY_NAME, grants=("*",))
        await _create_sample_data(store, principal)
    return Demo(producer_id=producer_id, key=new_key.key, created=created)


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
Producer login:  {DEMO_EMAIL} / {DEMO_PASSWORD}

Claude Code:
  claude mcp add --transport http blohko {url}/mcp --header "Authorization: Bearer {demo.key}"

Claude Desktop (claude_desktop_config.json), stdio on the same database:
{json.dumps(desktop, indent=2)}

"""
