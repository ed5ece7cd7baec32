"""Small helpers that build test data through the real code paths."""

from __future__ import annotations

import hashlib
import json
import secrets
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
from mcp import Client
from mcp_types import CallToolResult, TextContent, Tool
from sqlalchemy import func, select

from server.http_app import create_http_app
from server.mcp_app import Runtime, create_mcp_server
from server.settings import Settings
from storage.engine import Store
from storage.ids import utcnow
from storage.tables import metadata
from tools.core.context import Principal
from tools.domains.accounts import create_api_key, create_producer


@dataclass
class Tenant:
    producer_id: str
    owner_user_id: str
    owner_email: str
    owner_password: str
    key: str
    key_id: str


async def make_tenant(store: Store, *, name: str, permissions: list[str]) -> Tenant:
    email = f"owner-{secrets.token_hex(4)}@example.com"
    password = "owner-password-1"
    async with store.writing() as db:
        made = await create_producer(db, name=name, email=email, password=password, clock=utcnow)
        new_key = await create_api_key(
            db, producer_id=made.producer.id, name="test key", permissions=permissions, clock=utcnow
        )
    return Tenant(
        producer_id=made.producer.id,
        owner_user_id=made.owner.id,
        owner_email=email,
        owner_password=password,
        key=new_key.key,
        key_id=new_key.api_key.id,
    )


async def add_key(store: Store, tenant: Tenant, permissions: list[str], **kwargs: Any) -> str:
    async with store.writing() as db:
        new_key = await create_api_key(
            db,
            producer_id=tenant.producer_id,
            name="extra",
            permissions=permissions,
            clock=utcnow,
            **kwargs,
        )
    return new_key.key


def mcp_client(store: Store, key: str, **runtime: Any) -> Client:
    """An in-process client of a fresh server acting with `key`."""
    return Client(create_mcp_server(Runtime(store=store, **runtime), api_key=key))


def text_of(result: CallToolResult) -> str:
    """The text of a call's answer: every tool answers with one text block."""
    content = result.content[0]
    assert isinstance(content, TextContent), content
    return content.text


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a successful call (fails the test with the error otherwise)."""
    assert not result.is_error, text_of(result)
    structured = result.structured_content
    assert structured is not None and json.loads(text_of(result)) == structured
    return structured


def error(result: CallToolResult) -> dict[str, str]:
    """The `{error, message}` body of a failed call."""
    assert result.is_error, f"expected an error, got {result.structured_content}"
    return json.loads(text_of(result))


DEFAULT_CATEGORY_ID = "cat_web_development"


def course_body(**fields: Any) -> dict[str, Any]:
    """A valid `create_course` body with a fresh slug; `fields` override or add to it."""
    return {
        "title": "A Course",
        "slug": f"course-{secrets.token_hex(4)}",
        "categoryId": DEFAULT_CATEGORY_ID,
        **fields,
    }


async def make_course(client: Client, **fields: Any) -> dict[str, Any]:
    """Create a course through the `create_course` tool; its `course` result."""
    return ok(await client.call_tool("create_course", course_body(**fields)))["course"]


async def make_section(client: Client, course_id: str, title: str, **fields: Any) -> dict[str, Any]:
    result = await client.call_tool("create_section", {"courseId": course_id, "title": title, **fields})
    return ok(result)["section"]


async def make_lesson(client: Client, section: dict[str, Any], title: str, **fields: Any) -> dict[str, Any]:
    arguments = {"courseId": section["courseId"], "sectionId": section["id"], "title": title, **fields}
    return ok(await client.call_tool("create_lesson", arguments))["lesson"]


# Bookkeeping that any call may touch, rejected or not: when a key was last used, the audit
# log (which records failed writes too) and rate-limit counters.
_BOOKKEEPING_COLUMNS = {("api_keys", "last_used_at")}
_BOOKKEEPING_TABLES = {"audit_events", "rate_limit_windows"}


async def store_digest(store: Store) -> str:
    """A digest of every row of every table (bookkeeping aside): equal digests, unchanged store."""
    digest = hashlib.sha256()
    async with store.sessions() as session:
        for table in metadata.sorted_tables:
            if table.name in _BOOKKEEPING_TABLES:
                continue
            columns = [c for c in table.columns if (table.name, c.name) not in _BOOKKEEPING_COLUMNS]
            rows = (await session.execute(select(*columns))).all()
            digest.update(json.dumps(sorted(map(repr, rows))).encode())
    return digest.hexdigest()


async def count_rows(store: Store, table: type) -> int:
    """How many rows `table` (a SQLModel table class) holds, across all producers."""
    async with store.sessions() as session:
        return (await session.execute(select(func.count()).select_from(table))).scalar_one()


def principal_of(tenant: Tenant) -> Principal:
    """The principal of `tenant`'s full-access key, for calling `run_operation` directly."""
    return Principal(producer_id=tenant.producer_id, key_id=tenant.key_id, key_name="test key", grants=("*",))


async def tools_list_over_http(store: Store, key: str) -> bytes:
    """The body of a streamable-HTTP `tools/list` response for `key`, exactly as the server sends it."""
    app = create_http_app(Settings(database_url=store.url), Runtime(store=store))
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            response = await http.post("/mcp", json=request, headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def hints_of(tool: Tool) -> tuple[bool, bool, bool, bool]:
    """A listed tool's (readOnly, destructive, idempotent, openWorld) hints, an absent hint read as MCP
    defines it (`server.tool_listing.published_annotations` leaves defaults out). MCP defines the
    destructive and idempotent hints only for tools that write; a read-only tool is neither
    destructive and is idempotent, as the catalog declares it."""
    hints = tool.annotations
    assert hints is not None, f"{tool.name} is listed without annotations"
    open_world = hints.open_world_hint is not False
    if hints.read_only_hint:
        return True, False, True, open_world
    return False, hints.destructive_hint is not False, hints.idempotent_hint is True, open_world


PUBLIC_HOOK_URL = "https://93.184.216.34/blohko-hook"
"""A webhook URL on a public address that needs no DNS (nothing is delivered in process)."""


async def add_webhook(store: Store, producer_id: str) -> str:
    """A webhook endpoint of `producer_id`, written straight to the store; its id."""
    from storage.ids import new_id
    from storage.tables import WebhookEndpoint

    endpoint = WebhookEndpoint(
        id=new_id("wh"), producer_id=producer_id, url=PUBLIC_HOOK_URL, event_types=[], secret="whsec_dGVzdA=="
    )
    async with store.writing() as db:
        db.session.add(endpoint)
    return endpoint.id


def statements(store: Store) -> AbstractContextManager[list[str]]:
    """The SQL statements run on `store` inside the block (the statement-count tests)."""
    return store.statements_seen()


def apart_from_exports(document: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A student's export without the audit entries of earlier exports (each export is audited, so
    a later one shows those before it), and those entries."""
    entries = document["auditEntries"]
    exports = [entry for entry in entries if entry["operation"] == "export_student"]
    kept = [entry for entry in entries if entry["operation"] != "export_student"]
    return {**document, "auditEntries": kept}, exports
