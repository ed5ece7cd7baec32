"""Incremental sync and lookups: every list tool takes `updatedAfter` and answers only
the rows created or changed after it, oldest change first; rows carry `updatedAt`; a course is
found by its exact slug and a student by an exact email; a course's delete says what went with it."""

from __future__ import annotations

from datetime import datetime

from server.sample_data import create_sample_data
from tests.support.clock import Clock
from tests.support.factories import make_course, mcp_client, ok, principal_of, text_of
from tests.support.rest import small_sample
from tools.registry import TOOLS

LONG_AGO = "2000-01-01T00:00:00Z"
FAR_AHEAD = "2999-01-01T00:00:00Z"
SYNCED_LISTS = [
    op for op in TOOLS if "updatedAfter" in op.input_schema.get("properties", {}) and "mcp" in op.transports
]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _rows(answer: dict) -> list[dict]:
    """A list's rows: a page's `data`, or a curriculum's `sections` / `lessons`."""
    return next(answer[key] for key in ("data", "sections", "lessons") if key in answer)


def _ids(answer: dict) -> set[str]:
    return {row.get("id") or f"{row.get('studentId')}/{row.get('code')}" for row in _rows(answer)}


def test_every_list_tool_but_the_feed_and_the_fixed_categories_takes_updated_after():
    lists = {op.name for op in TOOLS if op.name.startswith("list_") and "mcp" in op.transports}
    assert lists - {op.name for op in SYNCED_LISTS} == {
        "list_events",
        "list_categories",
    }  # a cursor; a fixed table


async def test_every_list_answers_its_rows_after_a_time_long_ago_and_none_after_one_ahead(store, tenant):
    world = await create_sample_data(
        store, principal_of(tenant), owner_user_id=tenant.owner_user_id, sample=small_sample()
    )
    async with mcp_client(store, tenant.key) as client:
        for op in SYNCED_LISTS:
            needed = {
                *op.input_schema.get("required", []),
                *op.path_params,
            }  # a thread's comments, not a community's
            arguments: dict[str, object] = {name: world[name] for name in needed if name in world}
            if "limit" in op.input_schema["properties"]:
                arguments["limit"] = 100  # the whole list on one page
            everything = ok(await client.call_tool(op.name, arguments))
            since_long_ago = ok(await client.call_tool(op.name, {**arguments, "updatedAfter": LONG_AGO}))
            ahead = ok(await client.call_tool(op.name, {**arguments, "updatedAfter": FAR_AHEAD}))
            assert _ids(since_long_ago) == _ids(everything), op.name
            assert _rows(ahead) == [], op.name


async def test_a_change_brings_a_row_back_after_the_newer_ones_and_older_rows_stay_out(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        register = lambda name: client.call_tool(
            "register_student", {"name": name, "email": f"{name.lower()}@example.com"}
        )
        ada = ok(await register("Ada"))["student"]
        clock.advance(seconds=1)
        mark = clock.now
        clock.advance(seconds=1)
        grace = ok(await register("Grace"))["student"]
        clock.advance(seconds=1)
        ok(await client.call_tool("update_student", {"studentId": ada["id"], "bio": "Poet of numbers"}))
        synced = ok(await client.call_tool("list_students", {"updatedAfter": mark.isoformat()}))
        newest_first = ok(await client.call_tool("list_students", {}))
    assert [row["name"] for row in synced["data"]] == ["Grace", "Ada"]  # oldest change first
    changed = [_instant(row["updatedAt"]) for row in synced["data"]]
    assert changed[1] > changed[0] >= _instant(grace["createdAt"]) > mark
    assert [row["name"] for row in newest_first["data"]] == [
        "Grace",
        "Ada",
    ]  # without it: newest created first


async def test_a_changed_lesson_brings_its_section_back_with_all_its_lessons(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        course = await make_course(
            client,
            sections=[
                {"title": "One", "lessons": [{"title": "L1", "videoUrl": "https://youtu.be/dQw4w9WgXcQ"}]},
                {
                    "title": "Two",
                    "lessons": [
                        {"title": "L2", "videoUrl": "https://youtu.be/dQw4w9WgXcQ"},
                        {"title": "L3", "videoUrl": "https://youtu.be/dQw4w9WgXcQ"},
                    ],
                },
            ],
        )
        clock.advance(seconds=1)
        mark = clock.now.isoformat()
        clock.advance(seconds=1)
        two = course["sections"][1]
        lesson = two["lessons"][1]
        ok(
            await client.call_tool(
                "update_lesson",
                {
                    "courseId": course["id"],
                    "sectionId": two["id"],
                    "lessonId": lesson["id"],
                    "title": "L3, again",
                },
            )
        )
        sections = ok(
            await client.call_tool("list_sections", {"courseId": course["id"], "updatedAfter": mark})
        )
        lessons = ok(
            await client.call_tool(
                "list_lessons", {"courseId": course["id"], "sectionId": two["id"], "updatedAfter": mark}
            )
        )
    assert [(s["title"], [item["title"] for item in s["lessons"]]) for s in sections["sections"]] == [
        ("Two", ["L2", "L3, again"])
    ]
    assert [item["title"] for item in lessons["lessons"]] == ["L3, again"]


async def test_a_bad_updated_after_is_refused_naming_it(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        refused = await client.call_tool("list_courses", {"updatedAfter": "yesterday"})
    assert refused.is_error and "updatedAfter" in text_of(refused)


async def test_a_course_is_found_by_its_exact_slug_and_a_student_by_an_exact_email(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        await make_course(client, title="Python for Beginners", slug="python-for-beginners")
        await make_course(client, title="Advanced Python", slug="python-for-beginners-2")
        for name in ("Ada Lovelace", "Adam Smith"):
            ok(
                await client.call_tool(
                    "register_student", {"name": name, "email": f"{name.split()[0].lower()}@example.com"}
                )
            )
        by_slug = ok(await client.call_tool("list_courses", {"search": "python-for-beginners"}))
        by_title = ok(await client.call_tool("list_courses", {"search": "python"}))
        by_email = ok(await client.call_tool("list_students", {"search": "ADA@example.com"}))
        by_name = ok(await client.call_tool("list_students", {"search": "ada"}))
    assert [c["slug"] for c in by_slug["data"]] == ["python-for-beginners"]  # exact: not its -2 sibling
    assert len(by_title["data"]) == 2
    assert [s["name"] for s in by_email["data"]] == ["Ada Lovelace"]  # exact: not adam@
    assert {s["name"] for s in by_name["data"]} == {"Ada Lovelace", "Adam Smith"}


async def test_deleting_a_course_says_how_many_sections_lessons_and_enrollments_went(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(
            client,
            sections=[
                {
                    "title": "One",
                    "lessons": [
                        {"title": "L1", "videoUrl": "https://youtu.be/dQw4w9WgXcQ"},
                        {"title": "L2", "videoUrl": "https://youtu.be/dQw4w9WgXcQ"},
                    ],
                },
            ],
        )
        for name in ("Ada", "Grace"):
            student = ok(
                await client.call_tool(
                    "register_student", {"name": name, "email": f"{name.lower()}@example.com"}
                )
            )["student"]
            ok(
                await client.call_tool(
                    "enroll_student", {"studentId": student["id"], "courseId": course["id"]}
                )
            )
        deleted = ok(await client.call_tool("delete_course", {"courseId": course["id"]}))
        left = ok(await client.call_tool("list_enrollments", {}))
    assert deleted == {
        "deleted": True,
        "id": course["id"],
        "sectionsDeleted": 1,
        "lessonsDeleted": 2,
        "enrollmentsDeleted": 2,
    }
    assert left["data"] == []
