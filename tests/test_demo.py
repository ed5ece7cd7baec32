"""`blohko demo`: demo data created once, a fresh full-access key each run (the previous one
revoked), and printed client configs that work."""

from __future__ import annotations

import pytest

from benchmarks.processes import cli_env, cli_json, run_cli
from server.demo_school import DEMO_COURSES, DEMO_STUDENT_COUNT
from storage.engine import open_store
from tests.factories import mcp_client, ok

pytestmark = pytest.mark.anyio


async def test_demo_creates_its_data_once_and_issues_a_fresh_key_each_run(databases):
    env = cli_env(databases.new("demo"))
    first = cli_json(env, "demo", "--no-serve")
    second = cli_json(env, "demo", "--no-serve")
    assert first["producerId"] == second["producerId"] and first["key"] != second["key"]
    async with open_store(env["BLOHKO_DATABASE_URL"]) as store:
        async with mcp_client(store, second["key"]) as client:
            me = ok(await client.call_tool("whoami", {}))
            students = ok(await client.call_tool("list_students", {}))
            courses = ok(await client.call_tool("list_courses", {"status": "published"}))
            communities = ok(await client.call_tool("list_communities", {}))
            enrollments = ok(await client.call_tool("list_enrollments", {}))
        async with mcp_client(store, first["key"]) as client:
            from mcp.shared.exceptions import MCPError

            with pytest.raises(MCPError, match="revoked"):
                await client.list_tools()
    assert me["key"]["permissions"] == ["*"]
    assert students["pagination"]["total"] == DEMO_STUDENT_COUNT  # not doubled by the second run
    published = [course["title"] for course in DEMO_COURSES if course["published"]]
    assert sorted(course["title"] for course in courses["data"]) == sorted(published)
    assert communities["pagination"]["total"] == 2 and enrollments["pagination"]["total"] >= DEMO_STUDENT_COUNT


def test_demo_prints_the_key_and_ready_to_paste_client_configs(databases):
    env = cli_env(databases.new("demo-text"))
    printed = run_cli(env, "demo", "--no-serve").stdout
    key = next(word for word in printed.split() if word.startswith("blk_"))
    assert f'claude mcp add --transport http blohko http://127.0.0.1:8000/mcp --header "Authorization: Bearer {key}"' in printed
    assert '"mcpServers"' in printed and f'"BLOHKO_API_KEY": "{key}"' in printed
    assert "demo@blohko.example" in printed
    assert "Dashboard:       http://127.0.0.1:8000/dashboard" in printed
    assert "Sign in with:  demo@blohko.example / demo-password" in printed
