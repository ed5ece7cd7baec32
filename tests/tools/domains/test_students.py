"""Students over MCP: register, list and search, get, update; every validation, not_found and conflict."""

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlmodel import col

from storage.tables import User
from tests.support.factories import error, mcp_client, ok
from tools.core import passwords
from tools.core.passwords import verify_password

JANE = {"name": "Jane Smith", "email": "jane@example.com", "password": "securepass123"}


async def _count_students(store) -> int:
    async with store.sessions() as session:
        return await session.scalar(select(func.count()).select_from(User).where(col(User.role) == "student"))


async def test_register_student_returns_the_reference_shape(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        result = ok(await client.call_tool("register_student", JANE))
    student = result["student"]
    assert set(student) == {
        "id",
        "name",
        "email",
        "avatarUrl",
        "bio",
        "role",
        "createdAt",
        "updatedAt",
    }  # updatedAt: incremental sync
    assert (student["name"], student["email"], student["role"]) == (
        "Jane Smith",
        "jane@example.com",
        "student",
    )
    assert student["avatarUrl"] is None and student["bio"] is None
    assert student["createdAt"].endswith("Z") and len(student["createdAt"]) == 24
    assert result["generatedPassword"] is None


async def test_register_student_hashes_the_password(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ok(await client.call_tool("register_student", JANE))
    async with store.sessions() as session:
        stored = await session.scalar(select(col(User.password_hash)).where(col(User.email) == JANE["email"]))
    assert stored.startswith("$argon2") and JANE["password"] not in stored


async def test_register_student_without_password_returns_a_generated_one_once(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        result = ok(await client.call_tool("register_student", {"name": "Ravi", "email": "ravi@example.com"}))
        fetched = ok(await client.call_tool("get_student", {"studentId": result["student"]["id"]}))
    assert len(result["generatedPassword"]) >= 16
    assert "generatedPassword" not in fetched and result["generatedPassword"] not in str(fetched)
    async with store.sessions() as session:
        stored = await session.scalar(
            select(col(User.password_hash)).where(col(User.email) == "ravi@example.com")
        )
    assert result["generatedPassword"] not in stored and await verify_password(
        stored, result["generatedPassword"]
    )


async def test_a_generated_password_is_hashed_at_argon2s_smallest_cost_and_a_chosen_one_at_full_cost(
    monkeypatch,
):
    """120 random bits need no slow hash (no guess finds them): registering many students without
    passwords (the demo school, imports) costs no 64 MiB and core-second each."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher())  # production's cost, for this test only
    generated = passwords.generate_password()
    light, chosen = (
        await passwords.hash_generated_password(generated),
        await passwords.hash_password("securepass123"),
    )
    assert light.startswith("$argon2id$v=19$m=1024,t=1,p=1$") and await passwords.verify_password(
        light, generated
    )
    assert chosen.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and await passwords.verify_password(
        chosen, "securepass123"
    )
    assert not await passwords.verify_password(light, generated + "x")


async def test_register_student_accepts_avatar_and_bio(store, tenant):
    args = {**JANE, "avatarUrl": "https://cdn.example.com/jane.png", "bio": "b" * 2000}
    async with mcp_client(store, tenant.key) as client:
        student = ok(await client.call_tool("register_student", args))["student"]
    assert student["avatarUrl"] == args["avatarUrl"] and len(student["bio"]) == 2000


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": None}, "email"),
        ({"password": "short"}, "password"),
        ({"avatarUrl": "ftp://example.com/a.png"}, "avatarUrl"),
        ({"avatarUrl": "javascript:alert(1)"}, "avatarUrl"),
        ({"bio": "b" * 2001}, "bio"),
        ({"name": 42}, "name"),
        ({"role": "owner"}, "role"),
    ],
)
async def test_register_student_refuses_invalid_input_and_writes_nothing(store, tenant, changes, field):
    args = {key: value for key, value in {**JANE, **changes}.items() if value is not None}
    if None in changes.values():
        args.pop(field, None)
    async with mcp_client(store, tenant.key) as client:
        body = error(await client.call_tool("register_student", args))
    assert body["error"] == "bad_request"
    assert f"{field}: " in body["message"]
    assert await _count_students(store) == 0


async def test_register_student_with_a_taken_email_is_a_conflict(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ok(await client.call_tool("register_student", JANE))
        body = error(await client.call_tool("register_student", {**JANE, "email": "JANE@Example.com"}))
    assert body["error"] == "conflict" and "JANE@Example.com" in body["message"]
    assert await _count_students(store) == 1


async def test_the_same_email_may_exist_at_two_producers(store, tenant_factory):
    first, second = await tenant_factory("First"), await tenant_factory("Second")
    for tenant in (first, second):
        async with mcp_client(store, tenant.key) as client:
            ok(await client.call_tool("register_student", JANE))
    assert await _count_students(store) == 2


async def test_get_student_of_unknown_id_is_not_found(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        body = error(await client.call_tool("get_student", {"studentId": "user_doesnotexist"}))
    assert body == {"error": "not_found", "message": "Student not found"}


async def test_get_student_does_not_return_staff_users(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        body = error(await client.call_tool("get_student", {"studentId": tenant.owner_user_id}))
    assert body["error"] == "not_found"


async def test_update_student_changes_only_the_given_fields(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        created = ok(await client.call_tool("register_student", {**JANE, "bio": "old bio"}))["student"]
        updated = ok(
            await client.call_tool(
                "update_student", {"studentId": created["id"], "avatarUrl": "https://cdn.example.com/j.png"}
            )
        )["student"]
        cleared = ok(await client.call_tool("update_student", {"studentId": created["id"], "bio": None}))[
            "student"
        ]
    assert updated["bio"] == "old bio" and updated["avatarUrl"] == "https://cdn.example.com/j.png"
    assert updated["name"] == created["name"] and updated["email"] == created["email"]
    assert cleared["bio"] is None and cleared["avatarUrl"] == "https://cdn.example.com/j.png"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"bio": "b" * 2001}, "bio"),
        ({"email": "a@b.co"}, "email"),
    ],
)
async def test_update_student_refuses_invalid_input(store, tenant, changes, field):
    async with mcp_client(store, tenant.key) as client:
        created = ok(await client.call_tool("register_student", JANE))["student"]
        body = error(await client.call_tool("update_student", {"studentId": created["id"], **changes}))
        after = ok(await client.call_tool("get_student", {"studentId": created["id"]}))["student"]
    assert body["error"] == "bad_request" and f"{field}: " in body["message"]
    assert after == {**created, "streak": {"current": 0, "longest": 0}}


async def test_update_student_of_unknown_id_is_not_found(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        body = error(await client.call_tool("update_student", {"studentId": "user_nope", "name": "X"}))
    assert body["error"] == "not_found"


async def test_list_students_paginates_newest_first(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        for number in range(5):
            ok(
                await client.call_tool(
                    "register_student", {"name": f"Student {number}", "email": f"s{number}@example.com"}
                )
            )
        first = ok(await client.call_tool("list_students", {"limit": 2}))
        last = ok(await client.call_tool("list_students", {"limit": 2, "page": 3}))
        beyond = ok(await client.call_tool("list_students", {"limit": 2, "page": 4}))
    assert [s["name"] for s in first["data"]] == ["Student 4", "Student 3"]
    assert first["pagination"] == {"page": 1, "limit": 2, "total": 5, "totalPages": 3, "hasMore": True}
    assert [s["name"] for s in last["data"]] == ["Student 0"]
    assert last["pagination"]["hasMore"] is False
    assert beyond["data"] == [] and beyond["pagination"]["total"] == 5


async def test_list_students_defaults_to_page_one_of_twenty(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        result = ok(await client.call_tool("list_students", {}))
    assert result == {
        "data": [],
        "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0, "hasMore": False},
    }


async def test_list_students_searches_names_case_insensitively(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        for name, email in [
            ("Jane Smith", "j@x.io"),
            ("Janet Doe", "jd@x.io"),
            ("Bob", "b@x.io"),
            ("50%_off", "p@x.io"),
        ]:
            ok(await client.call_tool("register_student", {"name": name, "email": email}))
        found = ok(await client.call_tool("list_students", {"search": "JAN"}))
        literal = ok(await client.call_tool("list_students", {"search": "%_"}))
    assert sorted(s["name"] for s in found["data"]) == ["Jane Smith", "Janet Doe"]
    assert [s["name"] for s in literal["data"]] == ["50%_off"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"page": 0}, "page"),
        ({"page": "2"}, "page"),
        ({"sort": "name"}, "sort"),
    ],
)
async def test_list_students_refuses_bad_paging(store, tenant, args, field):
    async with mcp_client(store, tenant.key) as client:
        body = error(await client.call_tool("list_students", args))
    assert body["error"] == "bad_request" and f"{field}: " in body["message"]
