"""`blohko demo`: a demo producer with sample data (created once) and a fresh full-access key."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.engine import Store
from tools.core.context import OPERATOR, Principal
from tools.core.errors import NotFound
from tools.core.runner import run_operation
from tools.registry import OPERATIONS_BY_NAME

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


_SAMPLE_COURSE = {
    "title": "Mastering TypeScript",
    "slug": "demo-mastering-typescript",
    "shortDescription": "Learn TypeScript from scratch",
    "price": 4999,
    "level": "intermediate",
    "categoryId": "cat_web_development",
    "published": True,
    "sections": [
        {
            "title": "Getting Started",
            "lessons": [
                {"title": "What is TypeScript?", "duration": 600, "videoUrl": "https://youtu.be/dQw4w9WgXcQ", "isPreview": True},
                {"title": "Setting Up Your Environment", "duration": 480, "videoUrl": "https://vimeo.com/123456789"},
            ],
        },
        {
            "title": "Type System Deep Dive",
            "lessons": [{"title": "Primitive Types", "duration": 720, "videoUrl": "https://cdn.example.com/video.mp4"}],
        },
    ],
}


async def _run(store: Store, principal: Principal, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await run_operation(OPERATIONS_BY_NAME[name], arguments, store=store, principal=principal)
    return result.model_dump(mode="json", by_alias=True)


async def _create_sample_data(store: Store, principal: Principal, owner_user_id: str) -> None:
    """Students, a published course with one enrollment in progress, and a community with a
    pinned welcome thread: enough for an agent to explore every kind of tool."""

    async def run(name: str, arguments: dict) -> dict:
        return await _run(store, principal, name, arguments)

    students = [
        (await run("register_student", {"name": name, "email": email, "password": "student-pass-1", "bio": bio}))["student"]
        for name, email, bio in _SAMPLE_STUDENTS
    ]
    course = (await run("create_course", _SAMPLE_COURSE))["course"]
    enrollment = (await run("enroll_student", {"studentId": students[0]["id"], "courseId": course["id"]}))["enrollment"]
    first_lesson = course["sections"][0]["lessons"][0]
    await run("update_progress", {"enrollmentId": enrollment["id"], "lessonId": first_lesson["id"], "completed": True})
    community = (await run("create_community", {"name": "TypeScript Learners", "slug": "demo-typescript-learners"}))["community"]
    for student in students[:3]:
        await run("add_member", {"communityId": community["id"], "userId": student["id"]})
    await run(
        "create_thread",
        {
            "communityId": community["id"],
            "title": "Weekly Discussion: What did you learn this week?",
            "content": "Share your wins, challenges, and insights...",
            "userId": owner_user_id,
            "pinned": True,
        },
    )


async def ensure_demo(store: Store) -> Demo:
    """Create the demo producer and its data on first run; every run issues a new demo key and
    revokes the previous one, since keys are stored only as hashes and cannot be shown again.
    Every step is a catalog operation run as the machine's operator (audited like any other)."""

    async def operate(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await _run(store, OPERATOR, name, arguments)

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
        await _create_sample_data(store, principal, producer["ownerUserId"])
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
