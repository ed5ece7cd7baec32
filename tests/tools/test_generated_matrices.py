"""Tests generated from the catalog, so every future tool is covered without anyone remembering:

- tenant isolation: producer B, with a `*` key and full data of its own, gets for each of producer
  A's ids, in every tool that takes one, exactly the answer an id of nothing gets (`not_found`,
  naming what was not found); no list or result of B's shows A's rows, and none of those calls
  changes a row;
- permissions: for every permission set, `tools/list` is exactly what docs/architecture.md's table (copied
  below as data) allows, every hidden tool is refused exactly like an unknown one over MCP and
  changes nothing, and REST answers 403.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette

from server.mcp_app import Runtime
from server.rest import API_PREFIX, rest_routes
from server.sample_data import create_sample_data
from tests.support.factories import (
    DEFAULT_CATEGORY_ID,
    PUBLIC_HOOK_URL,
    add_key,
    add_webhook,
    mcp_client,
    principal_of,
    store_digest,
    text_of,
)
from tests.support.rest import rest_route, small_sample
from tools.core.catalog import Operation
from tools.core.permissions import VALID_GRANTS
from tools.registry import TOOLS

# Arguments that name a tenant's rows. categoryId is platform-wide; keyId is only an audit filter.
SHARED_ID_ARGUMENTS = {"categoryId", "keyId"}
# An id that names no row at all.
ABSENT_ID = "nope_0000"
# A `not_found` message starts with what was not found: the argument's name without `Id`, but for these.
NOT_FOUND_NOUNS = {("create_comment", "parentId"): "Parent comment", ("remove_member", "userId"): "Member"}


def id_arguments(op: Operation) -> list[str]:
    names = op.input_schema.get("properties", {})
    return [name for name in names if name.endswith("Id") and name not in SHARED_ID_ARGUMENTS]


# Valid values for required fields that are not ids, by name, then by JSON type.
SAMPLE_VALUES: dict[str, Any] = {
    "email": lambda: f"x-{secrets.token_hex(3)}@example.com",
    "slug": lambda: f"slug-{secrets.token_hex(3)}",
    "url": lambda: "https://cdn.example.com/file.png",
    "type": lambda: "image",
    "fileName": lambda: "file.png",
    "role": lambda: "member",
    "completed": lambda: True,
}
TYPE_SAMPLES = {"string": "Sample", "integer": 1, "boolean": False, "array": [], "object": {}}


# Where a field's valid values depend on the operation.
SAMPLE_OVERRIDES: dict[tuple[str, str], Any] = {
    ("parse_video", "url"): lambda: "https://youtu.be/dQw4w9WgXcQ",
    ("create_webhook", "url"): lambda: PUBLIC_HOOK_URL,
}

# Arguments an operation needs though its schema cannot say so: one of two fields is required.
ONE_OF_SAMPLES: dict[str, dict[str, Any]] = {
    "enroll_students": {"studentIds": [ABSENT_ID]},
}


def filler(op: Operation) -> dict[str, Any]:
    schema = op.input_schema
    arguments = {}
    for name in schema.get("required", []):
        if name in id_arguments(op):
            continue
        sample = SAMPLE_OVERRIDES.get((op.name, name)) or SAMPLE_VALUES.get(name)
        if sample is not None:
            arguments[name] = sample()
            continue
        prop = schema["properties"][name]
        kind = prop.get("type") or next(
            option["type"] for option in prop.get("anyOf", []) if option.get("type") != "null"
        )
        arguments[name] = prop["enum"][0] if "enum" in prop else TYPE_SAMPLES[kind]
    if "categoryId" in schema.get("required", []):
        arguments["categoryId"] = DEFAULT_CATEGORY_ID
    return {**arguments, **ONE_OF_SAMPLES.get(op.name, {})}


def _foreign_ids_in(payload: Any, world: dict[str, str]) -> set[str]:
    text = json.dumps(payload)
    return {value for value in world.values() if value in text}


@pytest.fixture
async def two_worlds(store, tenant_factory):
    """Two producers with one of everything each: the ids by their argument names."""
    a, b = await tenant_factory("Academy A"), await tenant_factory("Academy B")
    world_a, world_b = [
        {
            **await create_sample_data(
                store, principal_of(t), owner_user_id=t.owner_user_id, sample=small_sample()
            ),
            "webhookId": await add_webhook(store, t.producer_id),
        }
        for t in (a, b)
    ]
    return a, b, world_a, world_b


def _answer(result) -> tuple[bool, Any]:
    return result.is_error, json.loads(text_of(result))


async def test_every_tool_keeps_producer_as_data_from_producer_b(store, two_worlds):
    _, b, world_a, world_b = two_worlds
    covered: dict[str, str] = {}
    before = None
    # Tools without id arguments go first: B's audit log later records the ids B itself sends
    # (A's among them), which is B's own request echoed, not A's data.
    ordered = sorted(TOOLS, key=lambda op: bool(id_arguments(op)))
    async with mcp_client(store, b.key) as client:
        for op in ordered:
            ids = id_arguments(op)
            if ids and before is None:
                before = await store_digest(store)  # from here on, no call may change a row
            for name in ids:
                # B's own valid ids everywhere but one argument, which names A's row, then no row.
                arguments = {**filler(op), **{other: world_b[other] for other in ids}}
                is_error, body = _answer(await client.call_tool(op.name, {**arguments, name: world_a[name]}))
                absent = _answer(await client.call_tool(op.name, {**arguments, name: ABSENT_ID}))
                assert (is_error, body) == absent, (
                    f"{op.name} told A's {name} from a missing one: {body} / {absent[1]}"
                )
                if is_error:
                    noun = NOT_FOUND_NOUNS.get((op.name, name), name.removesuffix("Id").capitalize())
                    assert body["error"] == "not_found", f"{op.name} with A's {name}: {body}"
                    assert body["message"].startswith(f"{noun} not found"), (
                        f"{op.name} with A's {name}: {body}"
                    )
                else:
                    # An optional filter naming A's row may answer an empty list, never A's rows.
                    assert name not in op.input_schema.get("required", []), f"{op.name} accepted A's {name}"
                    assert _foreign_ids_in(body, world_a) == set(), f"{op.name} showed A's rows"
                covered[op.name] = "ids"
            if not ids:
                result = await client.call_tool(op.name, filler(op))
                assert not result.is_error, f"{op.name}: {text_of(result)}"
                assert _foreign_ids_in(result.structured_content, world_a) == set(), (
                    f"{op.name} showed A's rows"
                )
                covered[op.name] = "results"
    assert await store_digest(store) == before, "a call naming A's row, or no row, changed the store"
    assert len(covered) == len(TOOLS)
    assert sum(kind == "ids" for kind in covered.values()) >= 30


# The permission table of docs/architecture.md, copied here as data: the
# matrix fails when the code's mapping of tools to permissions differs from it.
PERMISSION_TABLE: dict[str, set[str]] = {
    "courses:read": {
        "list_categories",
        "list_courses",
        "get_course",
        "list_sections",
        "list_lessons",
        "get_lesson",
    },
    "courses:write": {
        "create_course",
        "update_course",
        "delete_course",
        "publish_course",
        "unpublish_course",
        "create_section",
        "update_section",
        "delete_section",
        "create_lesson",
        "update_lesson",
        "delete_lesson",
    },
    "students:read": {"list_students", "get_student", "export_student"},
    "students:write": {"register_student", "update_student", "erase_student"},
    "enrollments:read": {
        "list_enrollments",
        "get_enrollment",
        "list_certificates",
        "list_achievements",
        "find_students_needing_attention",
    },
    "enrollments:write": {"enroll_student", "enroll_students", "update_progress", "delete_enrollment"},
    "communities:read": {
        "list_communities",
        "get_community",
        "list_threads",
        "get_thread",
        "list_comments",
        "list_members",
        "list_media",
        "get_community_insights",
    },
    "communities:write": {
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
    },
    "audit:read": {"list_audit_events"},
    # The event feed and webhook endpoints, each behind its own permissions.
    "events:read": {"list_events"},
    "webhooks:read": {"list_webhooks"},
    "webhooks:write": {"create_webhook", "update_webhook", "delete_webhook"},
}
ANY_VALID_KEY = {"parse_video", "whoami"}
# Tools whose answer joins resources: each needs every permission of NEEDS_ALL's row, or any one
# of NEEDS_ANY's (a report of parts, answering those the key may read).
NEEDS_ALL: dict[str, set[str]] = {"get_course_insights": {"courses:read", "enrollments:read"}}
NEEDS_ANY: dict[str, set[str]] = {
    "get_school_report": {"students:read", "enrollments:read", "communities:read"}
}

# The keys to try, by their grants (space-separated), and the rows of the table each one opens:
# every grant alone, `*`, no grant, and keys with several grants.
PERMISSION_SETS: dict[str, list[str]] = {
    "*": list(PERMISSION_TABLE),
    "none": [],
    "courses:*": ["courses:read", "courses:write"],
    "courses:read": ["courses:read"],
    "courses:write": ["courses:write"],
    "students:*": ["students:read", "students:write"],
    "students:read": ["students:read"],
    "students:write": ["students:write"],
    "enrollments:*": ["enrollments:read", "enrollments:write"],
    "enrollments:read": ["enrollments:read"],
    "enrollments:write": ["enrollments:write"],
    "communities:*": ["communities:read", "communities:write"],
    "communities:read": ["communities:read"],
    "communities:write": ["communities:write"],
    "audit:*": ["audit:read"],
    "audit:read": ["audit:read"],
    "events:*": ["events:read"],
    "events:read": ["events:read"],
    "webhooks:*": ["webhooks:read", "webhooks:write"],
    "webhooks:read": ["webhooks:read"],
    "webhooks:write": ["webhooks:write"],
    "students:* courses:read": ["students:read", "students:write", "courses:read"],
    "courses:read enrollments:read": ["courses:read", "enrollments:read"],
    "students:* communities:*": ["students:read", "students:write", "communities:read", "communities:write"],
    "courses:* students:* communities:*": [
        "courses:read",
        "courses:write",
        "students:read",
        "students:write",
        "communities:read",
        "communities:write",
    ],
    "courses:* students:* enrollments:* communities:*": [
        "courses:read",
        "courses:write",
        "students:read",
        "students:write",
        "enrollments:read",
        "enrollments:write",
        "communities:read",
        "communities:write",
    ],
}


def _grants(label: str) -> list[str]:
    return [] if label == "none" else label.split()


def allowed_by_design(label: str) -> set[str]:
    """The tools docs/architecture.md's table gives this key (from the table above, not from the code)."""
    rows = set(PERMISSION_SETS[label])
    joined = {name for name, needed in NEEDS_ALL.items() if needed <= rows}
    joined |= {name for name, needed in NEEDS_ANY.items() if needed & rows}
    return ANY_VALID_KEY.union(joined, *(PERMISSION_TABLE[row] for row in rows))


def _rest_path(op: Operation) -> str:
    _, path = rest_route(op)
    for name in id_arguments(op) + ["categoryId", "keyId"]:
        path = path.replace("{" + name + "}", "id_0000")
    return API_PREFIX + path


async def _refusal(client, name: str, arguments: dict[str, Any]) -> MCPError:
    with pytest.raises(MCPError) as refused:
        await client.call_tool(name, arguments)
    return refused.value


@pytest.mark.parametrize("label", PERMISSION_SETS)
async def test_visibility_and_refusals_follow_the_permission_table(store, tenant, label):
    key = await add_key(store, tenant, _grants(label))
    allowed = allowed_by_design(label)
    hidden = [op for op in TOOLS if op.name not in allowed]
    before = await store_digest(store)
    async with mcp_client(store, key) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        unknown = await _refusal(client, "no_such_tool", {})
        for op in hidden:
            # Arguments the tool would accept, so that only the permission can stop it.
            refused = await _refusal(
                client, op.name, {**filler(op), **dict.fromkeys(id_arguments(op), ABSENT_ID)}
            )
            assert refused.error.code == unknown.error.code, op.name
            assert refused.error.message == unknown.error.message.replace("no_such_tool", op.name), op.name
    assert unknown.error.message == "Unknown tool: no_such_tool"
    assert listed == allowed
    assert await store_digest(store) == before
    app = Starlette(routes=rest_routes(Runtime(store=store)))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        for op in hidden:
            body = {} if op.http_method in ("POST", "PATCH") else None
            method, _ = rest_route(op)
            response = await http.request(method, _rest_path(op), json=body, headers=headers)
            assert response.status_code == 403, f"{op.name}: {response.status_code} {response.text}"
            assert response.json()["error"] == "forbidden"


def test_the_table_names_exactly_the_tools_of_the_catalog():
    joined = set(NEEDS_ALL) | set(NEEDS_ANY)
    assert ANY_VALID_KEY.union(joined, *PERMISSION_TABLE.values()) == {op.name for op in TOOLS}
    assert sum(map(len, PERMISSION_TABLE.values())) + len(ANY_VALID_KEY) + len(joined) == len(TOOLS)


def test_the_permission_sets_try_every_grant_alone_star_and_none():
    tried = {grant for label in PERMISSION_SETS for grant in _grants(label)}
    assert tried == VALID_GRANTS
    assert {label for label in PERMISSION_SETS if len(_grants(label)) == 1} == VALID_GRANTS
    assert "none" in PERMISSION_SETS and allowed_by_design("none") == ANY_VALID_KEY
