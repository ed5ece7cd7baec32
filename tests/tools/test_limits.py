"""Limits that protect the server, checked over the whole catalog: every string argument has a
maximum length, every list a maximum size, every page a maximum limit; oversized input is a
clear bad_request."""

from __future__ import annotations

import pytest

from tests.support.factories import DEFAULT_CATEGORY_ID, error, mcp_client, ok
from tools.registry import TOOLS


def _unbounded(schema: dict, path: str, defs: dict) -> list[str]:
    """Paths of string properties without maxLength and arrays without maxItems."""
    if "$ref" in schema:
        return _unbounded(defs[schema["$ref"].split("/")[-1]], path, defs)
    found = []
    for option in schema.get("anyOf", []):
        found += _unbounded(option, path, defs)
    kind = schema.get("type")
    if kind == "string" and "maxLength" not in schema and "enum" not in schema and "format" not in schema:
        found.append(path)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(path)
        found += _unbounded(schema.get("items", {}), f"{path}[]", defs)
    for name, sub in schema.get("properties", {}).items():
        found += _unbounded(sub, f"{path}.{name}", defs)
    return found


@pytest.mark.parametrize("op", TOOLS, ids=lambda op: op.name)
def test_every_string_and_list_argument_is_bounded(op):
    schema = op.input_schema
    assert _unbounded(schema, op.name, schema.get("$defs", {})) == []


@pytest.mark.parametrize(
    "op", [op for op in TOOLS if "limit" in op.input_schema.get("properties", {})], ids=lambda op: op.name
)
def test_every_page_size_is_at_most_100(op):
    assert op.input_schema["properties"]["limit"]["maximum"] == 100


async def test_an_oversized_nested_create_is_refused_naming_the_list(store, tenant):
    lesson = {"title": "L"}
    too_many_sections = [{"title": f"S{n}", "lessons": [lesson]} for n in range(101)]
    too_many_lessons = [{"title": "S", "lessons": [lesson] * 201}]
    async with mcp_client(store, tenant.key) as client:
        sections = error(
            await client.call_tool(
                "create_course",
                {
                    "title": "Big",
                    "slug": "big",
                    "categoryId": DEFAULT_CATEGORY_ID,
                    "sections": too_many_sections,
                },
            )
        )
        lessons = error(
            await client.call_tool(
                "create_course",
                {
                    "title": "Big",
                    "slug": "big",
                    "categoryId": DEFAULT_CATEGORY_ID,
                    "sections": too_many_lessons,
                },
            )
        )
    assert sections["error"] == "bad_request" and sections["message"].startswith("Invalid input: sections: ")
    assert lessons["error"] == "bad_request" and lessons["message"].startswith(
        "Invalid input: sections[0].lessons: "
    )


async def test_a_nested_create_of_more_than_1000_lessons_in_all_is_refused_and_1000_are_created(
    store, tenant
):
    lessons = [{"title": f"L{n}"} for n in range(200)]
    body = {"title": "Big", "slug": "big", "categoryId": DEFAULT_CATEGORY_ID}
    async with mcp_client(store, tenant.key) as client:
        refused = error(
            await client.call_tool(
                "create_course",
                {
                    **body,
                    "sections": [{"title": "S", "lessons": lessons}] * 5
                    + [{"title": "S", "lessons": lessons[:1]}],
                },
            )
        )
        created = ok(
            await client.call_tool(
                "create_course", {**body, "sections": [{"title": "S", "lessons": lessons}] * 5}
            )
        )
    assert refused == {
        "error": "unprocessable",
        "message": "Invalid input: sections: at most 1000 lessons in one call, got 1001; add the rest with create_lesson",
    }
    assert sum(len(section["lessons"]) for section in created["course"]["sections"]) == 1000


async def test_a_huge_string_is_refused_naming_the_field(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        body = error(
            await client.call_tool("register_student", {"name": "x" * 1_000_000, "email": "a@example.com"})
        )
    assert body["error"] == "bad_request" and body["message"].startswith("Invalid input: name: ")


@pytest.mark.parametrize("text", ["nul\x00byte", "lone \ud800 surrogate"])
async def test_text_no_database_can_store_is_a_bad_request_on_every_engine(store, tenant, text):
    async with mcp_client(store, tenant.key) as client:
        body = error(await client.call_tool("register_student", {"name": text, "email": "a@example.com"}))
        nested = error(
            await client.call_tool(
                "create_course",
                {
                    "title": "T",
                    "slug": "t-slug",
                    "categoryId": DEFAULT_CATEGORY_ID,
                    "sections": [{"title": text}],
                },
            )
        )
    assert body["error"] == "bad_request" and body["message"].startswith("Invalid input: name: ")
    assert nested["error"] == "bad_request" and nested["message"].startswith(
        "Invalid input: sections[0].title: "
    )
