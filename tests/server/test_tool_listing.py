"""What `tools/list` publishes: the context budget, the schema snapshot, and that trimming the
published schemas loosened nothing (`server/tool_listing.py`)."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from server.published_tools import PUBLISHED_TOOLS_FILE
from server.tool_listing import CONVENTIONS, _inline_single_use_definitions
from tests.support.factories import error, hints_of, mcp_client, ok, tools_list_over_http
from tools.registry import OPERATIONS_BY_NAME, TOOLS

BUDGET_BYTES = 26_000
"""The context budget, "under 26 KB" read strictly: the tools/list response for a `*` key, as sent."""


async def test_tools_list_for_a_full_key_fits_the_context_budget(store, tenant, capsys):
    body = await tools_list_over_http(store, tenant.key)
    tools = json.loads(body)["result"]["tools"]
    assert {tool["name"] for tool in tools} == {op.name for op in TOOLS}
    size = len(body)
    with capsys.disabled():
        print(
            f"\ntools/list for a '*' key: {size} bytes, {len(tools)} tools, {size // len(tools)} bytes a tool"
        )
    sizes = sorted(
        ((len(json.dumps(tool, separators=(",", ":"))), tool["name"]) for tool in tools), reverse=True
    )
    biggest = ", ".join(f"{name} {tool_size}" for tool_size, name in sizes[:5])
    assert size < BUDGET_BYTES, (
        f"tools/list is {size} bytes, over the {BUDGET_BYTES} budget; largest: {biggest}"
    )


async def test_tools_list_serves_the_published_tool_file(store, tenant):
    """A schema or description change shows in review as a change of `server/published_tools.json`
    (generated from the catalog: `scripts/regenerate`); a key with every permission is served it
    as it is, without the access fields that decide who sees a tool."""
    listed = json.loads(await tools_list_over_http(store, tenant.key))["result"]["tools"]
    published = json.loads(PUBLISHED_TOOLS_FILE.read_text(encoding="utf-8"))["tools"]
    assert listed == [
        {key: value for key, value in entry.items() if key not in ("permission", "auth")}
        for entry in published
    ]


@pytest.fixture
async def listed(store, tenant) -> dict:
    async with mcp_client(store, tenant.key) as client:
        return {tool.name: tool for tool in (await client.list_tools()).tools}


async def test_every_tool_keeps_its_description_and_publishes_no_output_schema(listed):
    for op in TOOLS:
        tool = listed[op.name]
        # On one line, without a list's "Paginated." (CONVENTIONS says it once for every list tool).
        one_line = " ".join(op.description.split())
        assert tool.description == (
            one_line.replace(" Paginated.", "") if "page" in op.input_model.model_fields else one_line
        )
        assert tool.output_schema is None and tool.title is None


async def test_listed_hints_read_as_the_catalog_declares_them(listed):
    for op in TOOLS:
        tool = listed[op.name]
        assert hints_of(tool) == (op.read_only, op.destructive, op.idempotent, op.open_world), op.name
        # Never left to a default that a careless client could read the other way.
        assert tool.annotations.open_world_hint is False
        if not op.read_only:
            assert tool.annotations.destructive_hint is op.destructive, op.name


async def test_published_input_schemas_are_valid_json_schemas_of_objects(listed):
    for name, tool in listed.items():
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object", name
        assert "additionalProperties" not in json.dumps(tool.input_schema), name


async def test_a_nested_model_used_once_is_written_in_place_and_validates_the_same(listed):
    published = listed["create_course"].input_schema
    assert "$defs" not in published and "$ref" not in json.dumps(published)
    full = Draft202012Validator(OPERATIONS_BY_NAME["create_course"].input_schema)
    trimmed = Draft202012Validator(published)
    lesson = {"title": "Welcome", "duration": 90, "isPreview": True}
    course = {"title": "Python", "slug": "python", "categoryId": "c1"}
    good = {**course, "sections": [{"title": "Start", "lessons": [lesson]}]}
    untitled_lesson = {**course, "sections": [{"title": "Start", "lessons": [{"duration": 90}]}]}
    lessons_not_a_list = {**course, "sections": [{"title": "Start", "lessons": lesson}]}
    assert full.is_valid(good) and trimmed.is_valid(good)
    for bad in (untitled_lesson, lessons_not_a_list):
        assert not full.is_valid(bad) and not trimmed.is_valid(bad)


def test_a_definition_used_twice_or_by_itself_stays_shared():
    node = {"properties": {"text": {"type": "string"}, "replies": {"items": {"$ref": "#/$defs/Node"}}}}
    once = {"properties": {"at": {"type": "string"}}, "type": "object"}
    schema = {
        "properties": {
            "root": {"$ref": "#/$defs/Node"},
            "first": {"$ref": "#/$defs/Pair"},
            "second": {"$ref": "#/$defs/Pair"},
            "when": {"$ref": "#/$defs/Once", "description": "Kept beside the written-in model."},
        },
        "$defs": {"Node": node, "Pair": {"type": "string"}, "Once": once},
    }
    assert _inline_single_use_definitions(schema) == {
        "properties": {
            **schema["properties"],
            "when": {**once, "description": "Kept beside the written-in model."},
        },
        "$defs": {"Node": node, "Pair": {"type": "string"}},
    }


def _nullable(schema: dict) -> set[str]:
    """Fields that take null: `anyOf [X, null]`, or `type: [X, "null"]` (the shorter form of the same)."""
    return {
        name
        for name, sub in schema["properties"].items()
        if {"type": "null"} in sub.get("anyOf", [])
        or "null" in (sub["type"] if isinstance(sub.get("type"), list) else [])
    }


async def test_only_fields_where_null_means_something_are_published_nullable(listed):
    assert _nullable(listed["update_course"].input_schema) == {
        "description",
        "shortDescription",
        "thumbnailUrl",
        "trailerUrl",
        "level",
    }
    assert _nullable(listed["update_lesson"].input_schema) == {"description", "videoUrl"}
    assert _nullable(listed["update_student"].input_schema) == {"avatarUrl", "bio"}
    assert _nullable(listed["create_course"].input_schema) == set()
    for name, tool in listed.items():
        full = OPERATIONS_BY_NAME[name].input_schema["properties"]
        for field in _nullable(tool.input_schema):
            assert "null" in full[field].get("description", ""), f"{name}.{field}"


async def test_page_and_limit_are_explained_once_in_the_instructions(store, tenant, listed):
    for name in ("list_students", "list_courses", "list_threads"):
        assert listed[name].input_schema["properties"]["limit"] == {"type": "integer"}
    async with mcp_client(store, tenant.key) as client:
        assert client.instructions is not None and CONVENTIONS in client.instructions


async def test_trimmed_limits_and_unknown_fields_are_still_refused(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        too_long = error(
            await client.call_tool("register_student", {"name": "x" * 201, "email": "a@example.com"})
        )
        unknown = error(
            await client.call_tool("register_student", {"name": "B", "email": "b@example.com", "age": 3})
        )
        student = ok(await client.call_tool("register_student", {"name": "A", "email": "a@example.com"}))[
            "student"
        ]
        null_name = error(
            await client.call_tool("update_student", {"studentId": student["id"], "name": None})
        )
        paged = error(await client.call_tool("list_students", {"limit": 101}))
    assert too_long["error"] == unknown["error"] == paged["error"] == null_name["error"] == "bad_request"
    assert "name" in too_long["message"] and "age" in unknown["message"] and "limit" in paged["message"]
    assert "name: must not be null" in null_name["message"]


async def test_results_carry_structured_content_without_an_output_schema(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        result = await client.call_tool("whoami", {})
    assert (
        result.structured_content == ok(result)
        and result.structured_content["producer"]["id"] == tenant.producer_id
    )
