"""Tool visibility is the permission model: a key lists exactly what it may call; a hidden tool
is refused exactly like an unknown one (for every permission set: test_generated_matrices.py)."""

import pytest
from mcp.shared.exceptions import MCPError

from tests.support.factories import add_key, mcp_client, ok


async def test_a_visible_tool_can_be_called(store, tenant):
    key = await add_key(store, tenant, ["students:read"])
    async with mcp_client(store, key) as client:
        assert ok(await client.call_tool("list_students", {}))["data"] == []


async def test_whoami_lists_the_visible_tools(store, tenant):
    key = await add_key(store, tenant, ["students:read"])
    async with mcp_client(store, key) as client:
        me = ok(await client.call_tool("whoami", {}))
    assert set(me["tools"]) == {
        "whoami",
        "parse_video",
        "list_students",
        "get_student",
        "export_student",
        "get_school_report",
    }
    assert me["key"]["permissions"] == ["students:read"]
    assert me["producer"] == {
        "id": tenant.producer_id,
        "name": "Acme Academy",
        "ownerUserId": tenant.owner_user_id,
    }


async def test_list_categories_returns_the_seeded_set(store, tenant):
    key = await add_key(store, tenant, ["courses:read"])
    async with mcp_client(store, key) as client:
        categories = ok(await client.call_tool("list_categories", {}))["categories"]
    assert len(categories) >= 10
    assert categories[0] == {
        "id": "cat_web_development",
        "name": "Web Development",
        "slug": "web-development",
        "icon": "code",
        "order": 0,
    }
    assert [c["order"] for c in categories] == sorted(c["order"] for c in categories)


async def test_a_key_revoked_mid_session_stops_at_once(store, tenant):
    from storage.ids import utcnow
    from tools.domains.accounts import revoke_api_key

    async with mcp_client(store, tenant.key) as client:
        ok(await client.call_tool("list_students", {}))
        async with store.writing() as db:
            await revoke_api_key(db, producer_id=tenant.producer_id, key_id=tenant.key_id, clock=utcnow)
        with pytest.raises(MCPError, match="revoked"):
            await client.call_tool("list_students", {})
        with pytest.raises(MCPError, match="revoked"):
            await client.list_tools()
