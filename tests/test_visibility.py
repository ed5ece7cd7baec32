"""Tool visibility is the permission model: a key lists exactly what it may call; a hidden tool
is refused exactly like an unknown one."""

import pytest
from mcp.shared.exceptions import MCPError

from tests.factories import add_key, mcp_client, ok
from tests.test_catalog import REQUIRED_PERMISSION
from tools.registry import TOOLS

pytestmark = pytest.mark.anyio

ALWAYS = {"whoami", "parse_video"}


def _expected(grants: list[str]) -> set[str]:
    """The visible set, derived from DESIGN.md's table (not from the code under test)."""
    names = set()
    for op in TOOLS:
        required = REQUIRED_PERMISSION[op.name]
        resource = required.split(":")[0] if required else None
        if required is None or "*" in grants or required in grants or f"{resource}:*" in grants:
            names.add(op.name)
    return names


MATRIX = {
    "*": ["*"],
    "students:*": ["students:*"],
    "students:read": ["students:read"],
    "courses:read": ["courses:read"],
    "enrollments:read": ["enrollments:read"],
    "enrollments:*": ["enrollments:*"],
    "none": [],
}


@pytest.mark.parametrize("grants", MATRIX.values(), ids=MATRIX.keys())
async def test_tools_list_is_exactly_what_the_key_allows(store, tenant, grants):
    key = await add_key(store, tenant, grants)
    async with mcp_client(store, key) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
    assert listed == _expected(grants)


def test_the_matrix_covers_the_expected_sets():
    assert _expected([]) == ALWAYS
    assert _expected(["students:read"]) == ALWAYS | {"list_students", "get_student"}
    assert _expected(["students:*"]) == ALWAYS | {"list_students", "get_student", "register_student", "update_student"}
    assert "list_categories" in _expected(["courses:read"])
    assert _expected(["*"]) == {op.name for op in TOOLS}


async def _refusal(client, name: str) -> MCPError:
    with pytest.raises(MCPError) as refused:
        await client.call_tool(name, {})
    return refused.value


@pytest.mark.parametrize("grants", MATRIX.values(), ids=MATRIX.keys())
async def test_each_hidden_tool_is_refused_like_an_unknown_tool(store, tenant, grants):
    key = await add_key(store, tenant, grants)
    hidden = {op.name for op in TOOLS} - _expected(grants)
    async with mcp_client(store, key) as client:
        unknown = await _refusal(client, "no_such_tool")
        for name in sorted(hidden):
            refused = await _refusal(client, name)
            assert refused.error.code == unknown.error.code
            assert refused.error.message == unknown.error.message.replace("no_such_tool", name)


async def test_a_visible_tool_can_be_called(store, tenant):
    key = await add_key(store, tenant, ["students:read"])
    async with mcp_client(store, key) as client:
        assert ok(await client.call_tool("list_students", {}))["data"] == []


async def test_whoami_lists_the_visible_tools(store, tenant):
    key = await add_key(store, tenant, ["students:read"])
    async with mcp_client(store, key) as client:
        me = ok(await client.call_tool("whoami", {}))
    assert set(me["tools"]) == _expected(["students:read"])
    assert me["key"]["permissions"] == ["students:read"]
    assert me["producer"] == {"id": tenant.producer_id, "name": "Acme Academy", "ownerUserId": tenant.owner_user_id}


async def test_list_categories_returns_the_seeded_set(store, tenant):
    key = await add_key(store, tenant, ["courses:read"])
    async with mcp_client(store, key) as client:
        categories = ok(await client.call_tool("list_categories", {}))["categories"]
    assert len(categories) >= 10
    assert categories[0] == {"id": "cat_web_development", "name": "Web Development", "slug": "web-development", "icon": "code", "order": 0}
    assert [c["order"] for c in categories] == sorted(c["order"] for c in categories)


async def test_a_key_revoked_mid_session_stops_at_once(store, tenant):
    from storage.ids import utcnow
    from tools.domains.accounts import revoke_api_key

    async with mcp_client(store, tenant.key) as client:
        ok(await client.call_tool("list_students", {}))
        async with store.sessions() as session, session.begin():
            await revoke_api_key(session, producer_id=tenant.producer_id, key_id=tenant.key_id, clock=utcnow)
        with pytest.raises(MCPError, match="revoked"):
            await client.call_tool("list_students", {})
        with pytest.raises(MCPError, match="revoked"):
            await client.list_tools()
