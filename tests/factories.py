"""Small helpers that build test data through the real code paths."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from mcp import Client
from mcp_types import CallToolResult

from server.mcp_app import Runtime, create_mcp_server
from storage.engine import Store
from storage.ids import utcnow
from tools.accounts import create_api_key, create_producer


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
    async with store.sessions() as session, session.begin():
        made = await create_producer(session, name=name, email=email, password=password, clock=utcnow)
        new_key = await create_api_key(
            session, producer_id=made.producer.id, name="test key", permissions=permissions, clock=utcnow
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
    async with store.sessions() as session, session.begin():
        new_key = await create_api_key(
            session, producer_id=tenant.producer_id, name="extra", permissions=permissions, clock=utcnow, **kwargs
        )
    return new_key.key


def mcp_client(store: Store, key: str, **runtime: Any) -> Client:
    """An in-process client of a fresh server acting with `key`."""
    return Client(create_mcp_server(Runtime(store=store, **runtime), api_key=key))


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a successful call (fails the test with the error otherwise)."""
    assert not result.is_error, result.content[0].text
    text = json.loads(result.content[0].text)
    assert text == result.structured_content
    return result.structured_content


def error(result: CallToolResult) -> dict[str, str]:
    """The `{error, message}` body of a failed call."""
    assert result.is_error, f"expected an error, got {result.structured_content}"
    return json.loads(result.content[0].text)
