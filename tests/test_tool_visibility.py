"""tools/list shows a key exactly the tools its permissions allow."""

from __future__ import annotations

import pytest

from tests.factories import add_key, mcp_client

pytestmark = pytest.mark.anyio


async def test_tools_list_hides_the_tools_a_key_may_not_call(store, tenant):
    key = await add_key(store, tenant, ["students:read"])
    async with mcp_client(store, key) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
    assert listed == {"whoami", "parse_video", "list_students", "get_student"}
