"""Tenant isolation for students: producer B never sees or changes producer A's students."""

import pytest

from tests.support.factories import error, mcp_client, ok


@pytest.fixture
async def two_tenants(store, tenant_factory):
    a, b = await tenant_factory("Academy A"), await tenant_factory("Academy B")
    async with mcp_client(store, a.key) as client:
        student = ok(
            await client.call_tool("register_student", {"name": "Alice Private", "email": "alice@a.example"})
        )
    return a, b, student["student"]


async def test_b_gets_not_found_for_a_student_of_a(store, two_tenants):
    _, b, alice = two_tenants
    async with mcp_client(store, b.key) as client:
        fetched = error(await client.call_tool("get_student", {"studentId": alice["id"]}))
        unknown = error(await client.call_tool("get_student", {"studentId": "user_00000000000000000000"}))
    assert fetched == unknown == {"error": "not_found", "message": "Student not found"}


async def test_b_cannot_update_a_student_of_a(store, two_tenants):
    a, b, alice = two_tenants
    async with mcp_client(store, b.key) as client:
        body = error(await client.call_tool("update_student", {"studentId": alice["id"], "name": "Hijacked"}))
    async with mcp_client(store, a.key) as client:
        after = ok(await client.call_tool("get_student", {"studentId": alice["id"]}))["student"]
    assert body["error"] == "not_found"
    assert after == {**alice, "streak": {"current": 0, "longest": 0}}


async def test_b_lists_and_searches_only_its_own_students(store, two_tenants):
    _, b, _ = two_tenants
    async with mcp_client(store, b.key) as client:
        ok(await client.call_tool("register_student", {"name": "Bob Own", "email": "bob@b.example"}))
        listed = ok(await client.call_tool("list_students", {}))
        searched = ok(await client.call_tool("list_students", {"search": "Alice"}))
    assert [s["name"] for s in listed["data"]] == ["Bob Own"]
    assert listed["pagination"]["total"] == 1
    assert searched["data"] == [] and searched["pagination"]["total"] == 0


async def test_b_may_register_the_email_a_uses_without_learning_it_exists(store, two_tenants):
    _, b, alice = two_tenants
    async with mcp_client(store, b.key) as client:
        created = ok(
            await client.call_tool("register_student", {"name": "Other Alice", "email": alice["email"]})
        )
    assert created["student"]["id"] != alice["id"]


async def test_whoami_names_the_callers_own_producer(store, two_tenants):
    a, b, _ = two_tenants
    async with mcp_client(store, b.key) as client:
        me = ok(await client.call_tool("whoami", {}))
    assert me["producer"]["id"] == b.producer_id != a.producer_id
