"""Communities, members and media: rules, cascades, tenant isolation, permissions."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from server.mcp_app import Runtime
from server.rest import rest_routes
from tests.support.community_factories import (
    MEDIA,
    call,
    new_comment,
    new_community,
    new_student,
    new_thread,
    refuse,
    row_counts,
)
from tests.support.factories import mcp_client
from tools.domains import communities, discussions
from tools.registry import TOOLS

COMMUNITY_MODULES = (communities.__name__, discussions.__name__)
COMMUNITY_OPERATIONS = [op for op in TOOLS if op.handler.__module__ in COMMUNITY_MODULES]
READ_TOOLS = {
    "list_communities",
    "get_community",
    "list_threads",
    "get_thread",
    "list_comments",
    "list_members",
    "list_media",
}
NOTHING = {"communities": 0, "community_members": 0, "threads": 0, "comments": 0, "community_media": 0}


# --- the catalog ---


def test_every_community_operation_is_registered_with_its_permission_and_hints():
    assert {op.name for op in COMMUNITY_OPERATIONS} == READ_TOOLS | {
        "create_community",
        "update_community",
        "delete_community",
        "create_thread",
        "update_thread",
        "delete_thread",
        "create_comment",
        "update_comment",
        "delete_comment",
        "add_member",
        "remove_member",
        "add_media",
    }
    for op in COMMUNITY_OPERATIONS:
        reads = op.name in READ_TOOLS
        assert op.permission == ("communities:read" if reads else "communities:write"), op.name
        assert op.read_only is reads, op.name
        assert op.destructive is op.name.startswith(("delete_", "remove_")), op.name
        assert op.idempotent is (reads or op.name.startswith("update_")), op.name
        assert op.http_path is not None and op.http_path.startswith("/communities"), op.name
        assert op.http_status == (201 if op.name.startswith(("create_", "add_")) else 200), op.name
        assert 0 < len(op.description) <= 300, op.name


# --- communities ---


async def test_create_community_applies_the_documented_defaults(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client, name="Course Community", slug="course-community")
    assert community["slug"] == "course-community"
    assert (community["isFree"], community["price"], community["isPublic"]) == (True, 0, True)
    assert (community["description"], community["coverImageUrl"]) == (None, None)


async def test_community_slug_is_unique_across_producers(store, tenant, tenant_factory):
    other = await tenant_factory(name="Other School")
    async with mcp_client(store, other.key) as client:
        await new_community(client, slug="python-club")
    async with mcp_client(store, tenant.key) as client:
        failure = await refuse(client, "create_community", name="Python Club", slug="python-club")
    assert failure["error"] == "conflict" and "python-club" in failure["message"]
    assert (await row_counts(store))["communities"] == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", -1),
        ("price", 9.99),
        ("slug", "Python Club"),
        ("slug", "-python"),
        ("name", ""),
        ("name", "x" * 201),
        ("coverImageUrl", "ftp://example.com/cover.png"),
        ("isFree", "yes"),
    ],
)
async def test_create_community_refuses_invalid_field(store, tenant, field, value):
    arguments = {"name": "Python Club", "slug": "python-club", field: value}
    async with mcp_client(store, tenant.key) as client:
        failure = await refuse(client, "create_community", **arguments)
    assert failure["error"] == "bad_request" and field in failure["message"]
    assert await row_counts(store) == NOTHING


async def test_list_communities_is_newest_first_paginated_and_only_the_callers(store, tenant, tenant_factory):
    other = await tenant_factory(name="Other School")
    async with mcp_client(store, other.key) as client:
        await new_community(client)
    async with mcp_client(store, tenant.key) as client:
        made = [(await new_community(client, name=f"Group {i}"))["id"] for i in range(3)]
        first = await call(client, "list_communities", limit=2)
        second = await call(client, "list_communities", limit=2, page=2)
    assert [c["id"] for c in first["data"] + second["data"]] == list(reversed(made))
    assert first["pagination"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2, "hasMore": True}


async def test_get_community_counts_members_threads_and_media(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        for name in ("Ann", "Bo"):
            await call(
                client, "add_member", communityId=community["id"], userId=await new_student(client, name)
            )
        await new_thread(client, community["id"], tenant.owner_user_id)
        await call(client, "add_media", communityId=community["id"], userId=tenant.owner_user_id, **MEDIA)
        got = (await call(client, "get_community", communityId=community["id"]))["community"]
    assert (got["memberCount"], got["threadCount"], got["mediaCount"]) == (2, 1, 1)
    assert got["slug"] == community["slug"]


async def test_update_community_changes_only_the_given_fields_and_null_clears(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client, description="Old", price=500, isFree=False)
        updated = await call(
            client, "update_community", communityId=community["id"], name="Renamed", description=None, price=0
        )
    got = updated["community"]
    assert (got["name"], got["description"], got["price"]) == ("Renamed", None, 0)
    assert (got["slug"], got["isFree"], got["isPublic"]) == (community["slug"], False, True)
    assert got["updatedAt"] >= community["updatedAt"]


async def test_update_community_refuses_null_for_a_required_field(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        failure = await refuse(client, "update_community", communityId=community["id"], name=None, price=None)
        kept = await call(client, "get_community", communityId=community["id"])
    assert failure["error"] == "bad_request"
    assert "name" in failure["message"] and "price" in failure["message"]
    assert kept["community"]["name"] == community["name"]


async def test_update_community_to_a_taken_slug_is_conflict_and_to_its_own_is_fine(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        taken = await new_community(client)
        community = await new_community(client)
        failure = await refuse(client, "update_community", communityId=community["id"], slug=taken["slug"])
        same = await call(client, "update_community", communityId=community["id"], slug=community["slug"])
    assert failure["error"] == "conflict"
    assert same["community"]["slug"] == community["slug"]


async def test_delete_community_removes_its_threads_comments_members_and_media(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        kept = await new_community(client)
        await new_thread(client, kept["id"], tenant.owner_user_id)
        community = await new_community(client)
        member = await new_student(client)
        await call(client, "add_member", communityId=community["id"], userId=member)
        thread = await new_thread(client, community["id"], member)
        top = await new_comment(client, community["id"], thread["id"], member)
        await new_comment(client, community["id"], thread["id"], tenant.owner_user_id, parent_id=top["id"])
        await call(client, "add_media", communityId=community["id"], userId=member, **MEDIA)

        deleted = await call(client, "delete_community", communityId=community["id"])
        gone = await refuse(client, "get_community", communityId=community["id"])

    assert deleted == {
        "deleted": True,
        "id": community["id"],
        "threadsDeleted": 1,
        "commentsDeleted": 2,
        "membersRemoved": 1,
        "mediaDeleted": 1,
    }
    assert gone == {"error": "not_found", "message": "Community not found"}
    assert await row_counts(store) == {**NOTHING, "communities": 1, "threads": 1}


# --- members ---


async def test_add_member_defaults_to_member_and_list_members_shows_the_user(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        student = await new_student(client, "Jane Smith")
        added = (await call(client, "add_member", communityId=community["id"], userId=student))["member"]
        await call(
            client, "add_member", communityId=community["id"], userId=tenant.owner_user_id, role="admin"
        )
        listed = await call(client, "list_members", communityId=community["id"])
    assert (added["userId"], added["role"]) == (student, "member")
    assert added["updatedAt"] == added["joinedAt"] == listed["data"][0]["updatedAt"]
    assert [(m["userId"], m["role"]) for m in listed["data"]] == [
        (student, "member"),
        (tenant.owner_user_id, "admin"),
    ]
    user = listed["data"][0]["user"]
    assert (user["id"], user["name"], user["avatarUrl"]) == (student, "Jane Smith", None)
    assert user["email"].endswith("@example.com")


async def test_list_members_with_a_user_id_answers_that_users_membership_or_none(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        member, outsider = await new_student(client, "Jane Smith"), await new_student(client, "John Doe")
        await call(client, "add_member", communityId=community["id"], userId=member)
        await call(client, "add_member", communityId=community["id"], userId=tenant.owner_user_id)
        mine = await call(client, "list_members", communityId=community["id"], userId=member)
        none = await call(client, "list_members", communityId=community["id"], userId=outsider)
    assert [m["userId"] for m in mine["data"]] == [member] and mine["pagination"]["total"] == 1
    assert none["data"] == [] and none["pagination"]["total"] == 0


async def test_adding_the_same_user_twice_is_conflict(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        await call(client, "add_member", communityId=community["id"], userId=tenant.owner_user_id)
        failure = await refuse(
            client, "add_member", communityId=community["id"], userId=tenant.owner_user_id, role="admin"
        )
    assert failure["error"] == "conflict"
    assert (await row_counts(store))["community_members"] == 1


async def test_add_member_refuses_an_unknown_role(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        failure = await refuse(
            client, "add_member", communityId=community["id"], userId=tenant.owner_user_id, role="owner"
        )
    assert failure["error"] == "bad_request" and "role" in failure["message"]
    assert (await row_counts(store))["community_members"] == 0


async def test_remove_member_returns_the_membership_id_and_keeps_their_posts(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        student = await new_student(client)
        member = (await call(client, "add_member", communityId=community["id"], userId=student))["member"]
        await new_thread(client, community["id"], student)
        removed = await call(client, "remove_member", communityId=community["id"], userId=student)
        again = await refuse(client, "remove_member", communityId=community["id"], userId=student)
    assert removed == {"deleted": True, "id": member["id"]}
    assert again["error"] == "not_found"
    assert (await row_counts(store))["threads"] == 1


# --- media ---


async def test_add_media_returns_it_and_list_media_filters_by_type(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        ids = {"communityId": community["id"], "userId": tenant.owner_user_id}
        video = (await call(client, "add_media", **ids, **MEDIA, duration=90, mimeType="video/mp4"))["media"]
        image = (await call(client, "add_media", **ids, **{**MEDIA, "type": "image", "fileSize": 0}))["media"]
        videos = await call(client, "list_media", communityId=community["id"], type="video")
        everything = await call(client, "list_media", communityId=community["id"])
    assert (video["uploadedBy"], video["duration"], video["mimeType"], video["fileSize"]) == (
        tenant.owner_user_id,
        90,
        "video/mp4",
        1_048_576,
    )
    assert [m["id"] for m in videos["data"]] == [video["id"]]
    assert [m["id"] for m in everything["data"]] == [image["id"], video["id"]]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", "audio"),
        ("url", "ftp://files.example.com/a.zip"),
        ("url", "not a url"),
        ("fileSize", -1),
        ("title", ""),
        ("fileName", ""),
        ("duration", -5),
    ],
)
async def test_add_media_refuses_invalid_field(store, tenant, field, value):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        arguments = {**MEDIA, field: value}
        failure = await refuse(
            client, "add_media", communityId=community["id"], userId=tenant.owner_user_id, **arguments
        )
    assert failure["error"] == "bad_request" and field in failure["message"]
    assert (await row_counts(store))["community_media"] == 0


async def test_rest_creates_with_201_and_remove_member_takes_user_id_in_the_query(store, tenant):
    app = Starlette(routes=rest_routes(Runtime(store=store)))
    headers = {"Authorization": f"Bearer {tenant.key}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as http:
        created = await http.post("/api/v1/communities", json={"name": "Club", "slug": "club"})
        community_id = created.json()["community"]["id"]
        members = f"/api/v1/communities/{community_id}/members"
        added = await http.post(members, json={"userId": tenant.owner_user_id, "role": "moderator"})
        removed = await http.delete(members, params={"userId": tenant.owner_user_id})
    assert created.status_code == 201 and added.status_code == 201
    assert removed.status_code == 200
    assert removed.json() == {"deleted": True, "id": added.json()["member"]["id"]}
