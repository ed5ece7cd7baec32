"""Tests generated from the catalog, so every future tool is covered without anyone remembering:

- tenant isolation: producer B, with a `*` key and full data of its own, gets `not_found` for each
  of producer A's ids in every tool that takes one, and no list or result of B's shows A's rows;
- permissions: for every permission set, `tools/list` is exactly what DESIGN.md's table allows,
  every hidden tool is refused like an unknown one over MCP, and REST answers 403.
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
from tests.factories import DEFAULT_CATEGORY_ID, add_key, mcp_client, principal_of
from tests.rest_support import small_sample
from tests.test_catalog import REQUIRED_PERMISSION
from tools.core.catalog import Operation
from tools.core.permissions import RESOURCE_ACTIONS
from tools.registry import TOOLS

pytestmark = pytest.mark.anyio

# Arguments that name a tenant's rows. categoryId is platform-wide; keyId is only an audit filter.
SHARED_ID_ARGUMENTS = {"categoryId", "keyId"}


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
SAMPLE_OVERRIDES: dict[tuple[str, str], Any] = {("parse_video", "url"): lambda: "https://youtu.be/dQw4w9WgXcQ"}


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
        kind = prop.get("type") or next(option["type"] for option in prop.get("anyOf", []) if option.get("type") != "null")
        arguments[name] = prop["enum"][0] if "enum" in prop else TYPE_SAMPLES[kind]
    if "categoryId" in schema.get("required", []):
        arguments["categoryId"] = DEFAULT_CATEGORY_ID
    return arguments


def _foreign_ids_in(payload: Any, world: dict[str, str]) -> set[str]:
    text = json.dumps(payload)
    return {value for value in world.values() if value in text}


@pytest.fixture
async def two_worlds(store, tenant_factory):
    """Two producers with one of everything each: the ids by their argument names."""
    a, b = await tenant_factory("Academy A"), await tenant_factory("Academy B")
    world_a, world_b = [
        await create_sample_data(store, principal_of(t), owner_user_id=t.owner_user_id, sample=small_sample())
        for t in (a, b)
    ]
    return a, b, world_a, world_b


async def test_every_tool_keeps_producer_as_data_from_producer_b(store, two_worlds):
    _, b, world_a, world_b = two_worlds
    covered: dict[str, str] = {}
    # Tools without id arguments go first: B's audit log later records the ids B itself sends
    # (A's among them), which is B's own request echoed, not A's data.
    ordered = sorted(TOOLS, key=lambda op: bool(id_arguments(op)))
    async with mcp_client(store, b.key) as client:
        for op in ordered:
            ids = id_arguments(op)
            for name in ids:
                # B's own valid ids everywhere but one argument, which names A's row.
                arguments = {**filler(op), **{other: world_b[other] for other in ids}, name: world_a[name]}
                result = await client.call_tool(op.name, arguments)
                body = json.loads(result.content[0].text)
                if result.is_error:
                    assert body["error"] == "not_found", f"{op.name} with A's {name}: {body}"
                else:
                    # An optional filter naming A's row may answer an empty list, never A's rows.
                    assert name not in op.input_schema.get("required", []), f"{op.name} accepted A's {name}"
                    assert _foreign_ids_in(body, world_a) == set(), f"{op.name} showed A's rows"
                covered[op.name] = "ids"
            if not ids:
                result = await client.call_tool(op.name, filler(op))
                assert not result.is_error, f"{op.name}: {result.content[0].text}"
                assert _foreign_ids_in(result.structured_content, world_a) == set(), f"{op.name} showed A's rows"
                covered[op.name] = "results"
    assert len(covered) == len(TOOLS)
    assert sum(kind == "ids" for kind in covered.values()) >= 30


def _permission_sets() -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {"*": ["*"], "none": []}
    for resource, actions in RESOURCE_ACTIONS.items():
        sets[f"{resource}:*"] = [f"{resource}:*"]
        for action in actions:
            sets[f"{resource}:{action}"] = [f"{resource}:{action}"]
    return sets


PERMISSION_SETS = _permission_sets()


def allowed_by_design(grants: list[str]) -> set[str]:
    """The tools DESIGN.md's table gives these grants (derived from the table, not the code)."""
    names = set()
    for op in TOOLS:
        required = REQUIRED_PERMISSION[op.name]
        resource = required.split(":")[0] if required else None
        if required is None or "*" in grants or required in grants or f"{resource}:*" in grants:
            names.add(op.name)
    return names


def _rest_path(op: Operation) -> str:
    path = op.http_path
    for name in id_arguments(op) + ["categoryId", "keyId"]:
        path = path.replace("{" + name + "}", "id_0000")
    return API_PREFIX + path


@pytest.mark.parametrize("grants", PERMISSION_SETS.values(), ids=PERMISSION_SETS.keys())
async def test_visibility_and_refusals_follow_the_permission_table(store, tenant, grants):
    key = await add_key(store, tenant, grants)
    allowed = allowed_by_design(grants)
    hidden = [op for op in TOOLS if op.name not in allowed]
    async with mcp_client(store, key) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        for op in hidden:
            with pytest.raises(MCPError) as refused:
                await client.call_tool(op.name, {})
            assert refused.value.error.message == f"Unknown tool: {op.name}"
    assert listed == allowed
    app = Starlette(routes=rest_routes(Runtime(store=store)))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        for op in hidden:
            body = {} if op.http_method in ("POST", "PATCH") else None
            response = await http.request(op.http_method, _rest_path(op), json=body, headers=headers)
            assert response.status_code == 403, f"{op.name}: {response.status_code} {response.text}"
            assert response.json()["error"] == "forbidden"


def test_the_permission_sets_cover_every_single_permission_wildcard_star_and_none():
    assert {"*", "none", "courses:*", "courses:read", "courses:write", "audit:read", "audit:*"} <= set(PERMISSION_SETS)
    assert len(PERMISSION_SETS) == 2 + sum(1 + len(actions) for actions in RESOURCE_ACTIONS.values())
    covered = set().union(*(allowed_by_design(grants) for grants in PERMISSION_SETS.values()))
    assert covered == {op.name for op in TOOLS}


# ---- the operations a producer session calls (the dashboard, key management over REST)

# They name no row of anyone's: signing out and changing one's own password act on the caller alone.
_SESSION_SELF_ONLY = {"logout", "change_password"}


def _session_operations() -> list[Operation]:
    from tools.registry import ALL_OPERATIONS

    return [op for op in ALL_OPERATIONS if "session" in op.auth]


async def _session_of(store, tenant) -> Any:
    from tools.core.context import ANONYMOUS
    from tools.core.runner import run_operation
    from tools.domains.sessions import authenticate_session, log_in

    signed = await run_operation(log_in, {"email": tenant.owner_email, "password": tenant.owner_password}, store=store, principal=ANONYMOUS)
    return await authenticate_session(store, signed.session.token, clock=lambda: signed.session.created_at)


@pytest.mark.parametrize("op", _session_operations(), ids=lambda op: op.name)
async def test_every_session_operation_keeps_producer_a_from_producer_bs_session(store, two_worlds, op):
    from tools.core.errors import BlohkoError
    from tools.core.runner import run_operation

    a, b, world_a, _ = two_worlds
    session_b = await _session_of(store, b)
    names = [name for name in op.input_schema.get("properties", {}) if name == "id" or name.endswith("Id")]
    if op.name in _SESSION_SELF_ONLY:
        assert names == [], f"{op.name} names rows: cover it here"
        return
    a_ids = {"id": a.key_id, "keyId": a.key_id, "producerId": a.producer_id}
    everything_of_a = {**world_a, **a_ids}
    assert set(names) <= set(a_ids), f"{op.name}: give A's {set(names) - set(a_ids)} here"
    for name in names:
        arguments = {**filler(op), name: a_ids[name]}
        if op.name == "create_api_key":
            arguments |= {"name": "B's", "permissions": ["*"]}
        try:
            result = await run_operation(op, arguments, store=store, principal=session_b)
        except BlohkoError as error:
            # A producerId names whose keys to manage: a session may name only its own (forbidden, existing or not).
            expected = "forbidden" if name == "producerId" else "not_found"
            assert error.code == expected, f"{op.name} with A's {name}: {error.code} {error.message}"
            continue
        assert name not in op.input_schema.get("required", []), f"{op.name} accepted A's {name}"
        assert _foreign_ids_in(result.model_dump(mode="json", by_alias=True), everything_of_a) == set(), f"{op.name} showed A's rows"
    if not names:
        result = await run_operation(op, filler(op), store=store, principal=session_b)
        assert _foreign_ids_in(result.model_dump(mode="json", by_alias=True), everything_of_a) == set(), f"{op.name} showed A's rows"


def test_the_session_matrix_covers_the_dashboards_operations():
    from tools.registry import served_over

    assert {op.name for op in served_over("dashboard")} - {"login"} <= {op.name for op in _session_operations()}
