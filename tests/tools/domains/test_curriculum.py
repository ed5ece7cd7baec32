"""Sections and lessons: ordering, video parsing, updates, deletes, validation, REST routes."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from server.mcp_app import Runtime
from server.rest import rest_routes
from storage.tables import Lesson, Section
from tests.support.factories import (
    count_rows,
    course_body,
    error,
    make_course,
    make_lesson,
    make_section,
    mcp_client,
    ok,
)


async def _course_with_sections(client, *titles: str) -> tuple[str, list[dict]]:
    course = await make_course(client, sections=[{"title": title} for title in titles])
    return course["id"], course["sections"]


async def _sections(client, course_id: str) -> list[tuple[str, int]]:
    listed = ok(await client.call_tool("list_sections", {"courseId": course_id}))["sections"]
    return [(section["title"], section["order"]) for section in listed]


async def _section_with_lessons(client, *titles: str) -> dict:
    course = await make_course(client, sections=[{"title": "S", "lessons": [{"title": t} for t in titles]}])
    return course["sections"][0]


async def _lessons(client, section: dict) -> list[tuple[str, int]]:
    arguments = {"courseId": section["courseId"], "sectionId": section["id"]}
    return [
        (lesson["title"], lesson["order"])
        for lesson in ok(await client.call_tool("list_lessons", arguments))["lessons"]
    ]


def _ids(section: dict) -> dict:
    return {"courseId": section["courseId"], "sectionId": section["id"]}


# ---- acceptance 4: section order


async def test_sections_without_order_go_last(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await _course_with_sections(client, "A", "B")
        added = await make_section(client, course_id, "C")
        assert added["order"] == 2
        assert await _sections(client, course_id) == [("A", 0), ("B", 1), ("C", 2)]


async def test_section_inserted_at_a_position_shifts_the_later_ones(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await _course_with_sections(client, "A", "B", "C")
        await make_section(client, course_id, "New", order=1)
        assert await _sections(client, course_id) == [("A", 0), ("New", 1), ("B", 2), ("C", 3)]


async def test_section_inserted_past_the_end_goes_last(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await _course_with_sections(client, "A", "B")
        added = await make_section(client, course_id, "Far", order=99)
        assert added["order"] == 2
        assert await _sections(client, course_id) == [("A", 0), ("B", 1), ("Far", 2)]


async def test_moving_a_section_up_renumbers_the_others(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, sections = await _course_with_sections(client, "A", "B", "C", "D")
        moved = ok(
            await client.call_tool(
                "update_section", {"courseId": course_id, "sectionId": sections[3]["id"], "order": 1}
            )
        )
        assert moved["section"]["order"] == 1
        assert await _sections(client, course_id) == [("A", 0), ("D", 1), ("B", 2), ("C", 3)]


async def test_moving_a_section_down_renumbers_the_others(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, sections = await _course_with_sections(client, "A", "B", "C", "D")
        ok(
            await client.call_tool(
                "update_section", {"courseId": course_id, "sectionId": sections[0]["id"], "order": 2}
            )
        )
        assert await _sections(client, course_id) == [("B", 0), ("C", 1), ("A", 2), ("D", 3)]


async def test_moving_a_section_past_the_end_makes_it_last(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, sections = await _course_with_sections(client, "A", "B", "C")
        moved = ok(
            await client.call_tool(
                "update_section", {"courseId": course_id, "sectionId": sections[0]["id"], "order": 50}
            )
        )
        assert moved["section"]["order"] == 2
        assert await _sections(client, course_id) == [("B", 0), ("C", 1), ("A", 2)]


async def test_deleting_a_section_closes_the_gap(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, sections = await _course_with_sections(client, "A", "B", "C")
        deleted = ok(
            await client.call_tool("delete_section", {"courseId": course_id, "sectionId": sections[1]["id"]})
        )
        assert deleted == {"deleted": True, "id": sections[1]["id"]}
        assert await _sections(client, course_id) == [("A", 0), ("C", 1)]
        await make_section(client, course_id, "D")
        assert await _sections(client, course_id) == [("A", 0), ("C", 1), ("D", 2)]


async def test_section_orders_are_per_course(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        first, sections = await _course_with_sections(client, "A", "B")
        second, _ = await _course_with_sections(client, "X", "Y")
        ok(
            await client.call_tool(
                "update_section", {"courseId": first, "sectionId": sections[1]["id"], "order": 0}
            )
        )
        await make_section(client, first, "C", order=0)
        assert await _sections(client, second) == [("X", 0), ("Y", 1)]


# ---- acceptance 4: lesson order


async def test_lesson_inserted_at_a_position_shifts_the_later_ones(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client, "A", "B")
        assert (await make_lesson(client, section, "Last"))["order"] == 2
        assert (await make_lesson(client, section, "First", order=0))["order"] == 0
        assert await _lessons(client, section) == [("First", 0), ("A", 1), ("B", 2), ("Last", 3)]


async def test_moving_a_lesson_renumbers_the_others(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client, "A", "B", "C", "D")
        a = section["lessons"][0]
        moved = ok(
            await client.call_tool("update_lesson", {**_ids(section), "lessonId": a["id"], "order": 2})
        )
        assert moved["lesson"]["order"] == 2
        assert await _lessons(client, section) == [("B", 0), ("C", 1), ("A", 2), ("D", 3)]
        d = section["lessons"][3]
        ok(await client.call_tool("update_lesson", {**_ids(section), "lessonId": d["id"], "order": 0}))
        assert await _lessons(client, section) == [("D", 0), ("B", 1), ("C", 2), ("A", 3)]


async def test_deleting_a_lesson_closes_the_gap(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client, "A", "B", "C")
        b = section["lessons"][1]
        deleted = ok(await client.call_tool("delete_lesson", {**_ids(section), "lessonId": b["id"]}))
        assert deleted == {"deleted": True, "id": b["id"]}
        assert await _lessons(client, section) == [("A", 0), ("C", 1)]


async def test_lesson_orders_are_per_section(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(
            client,
            sections=[
                {"title": "S1", "lessons": [{"title": "A"}, {"title": "B"}]},
                {"title": "S2", "lessons": [{"title": "X"}]},
            ],
        )
        first, second = course["sections"]
        await make_lesson(client, first, "New", order=0)
        ok(await client.call_tool("delete_lesson", {**_ids(first), "lessonId": first["lessons"][1]["id"]}))
        assert await _lessons(client, first) == [("New", 0), ("A", 1)]
        assert await _lessons(client, second) == [("X", 0)]


async def test_order_must_not_be_negative(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await _course_with_sections(client, "A")
        failure = error(
            await client.call_tool("create_section", {"courseId": course_id, "title": "B", "order": -1})
        )
    assert failure["error"] == "bad_request"
    assert "order:" in failure["message"]


# ---- sections


async def test_list_sections_returns_each_section_with_its_lessons_in_order(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(
            client, sections=[{"title": "S1", "lessons": [{"title": "A"}, {"title": "B"}]}, {"title": "S2"}]
        )
        await make_lesson(client, course["sections"][0], "Z", order=0)
        listed = ok(await client.call_tool("list_sections", {"courseId": course["id"]}))["sections"]
    assert [(s["title"], [x["title"] for x in s["lessons"]]) for s in listed] == [
        ("S1", ["Z", "A", "B"]),
        ("S2", []),
    ]


async def test_create_section_returns_it_without_lessons(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await _course_with_sections(client)
        section = await make_section(client, course_id, "  Intro  ")
    assert {k: section[k] for k in ("courseId", "title", "order", "lessons")} == {
        "courseId": course_id,
        "title": "Intro",
        "order": 0,
        "lessons": [],
    }


async def test_update_section_renames_it_and_returns_its_lessons(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client, "A")
        renamed = ok(await client.call_tool("update_section", {**_ids(section), "title": "Renamed"}))[
            "section"
        ]
    assert (renamed["title"], renamed["order"], [x["title"] for x in renamed["lessons"]]) == (
        "Renamed",
        0,
        ["A"],
    )


@pytest.mark.parametrize("field", ["title", "order"])
async def test_update_section_refuses_null(store, tenant, field):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client)
        failure = error(await client.call_tool("update_section", {**_ids(section), field: None}))
    assert failure == {"error": "bad_request", "message": f"Invalid input: {field}: must not be null"}


async def test_section_title_over_200_is_refused(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await _course_with_sections(client)
        failure = error(await client.call_tool("create_section", {"courseId": course_id, "title": "x" * 201}))
    assert failure["error"] == "bad_request"
    assert "title:" in failure["message"]


# ---- acceptance 5: deleting a section


async def test_deleting_a_section_removes_its_lessons(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(
            client,
            sections=[
                {"title": "Gone", "lessons": [{"title": "A"}, {"title": "B"}]},
                {"title": "Kept", "lessons": [{"title": "C"}]},
            ],
        )
        ok(await client.call_tool("delete_section", _ids(course["sections"][0])))
        after = ok(await client.call_tool("get_course", {"courseId": course["id"]}))["course"]
    assert [(s["title"], s["order"]) for s in after["sections"]] == [("Kept", 0)]
    assert (after["lessonCount"], await count_rows(store, Section), await count_rows(store, Lesson)) == (
        1,
        1,
        1,
    )


# ---- lessons and video


async def test_create_lesson_stores_the_embed_url_and_video_meta(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client)
        lesson = await make_lesson(
            client,
            section,
            "Intro",
            videoUrl="https://youtube.com/watch?v=dQw4w9WgXcQ",
            duration=600,
            isPreview=True,
        )
        fetched = ok(await client.call_tool("get_lesson", {**_ids(section), "lessonId": lesson["id"]}))[
            "lesson"
        ]
    assert fetched == lesson
    assert (lesson["videoUrl"], lesson["duration"], lesson["isPreview"]) == (
        "https://www.youtube.com/embed/dQw4w9WgXcQ",
        600,
        True,
    )
    assert lesson["videoMeta"] == {
        "type": "youtube",
        "videoId": "dQw4w9WgXcQ",
        "thumbnailUrl": "https://img.youtube.com/vi/dQw4w9WgXcQ/maxresdefault.jpg",
        "originalUrl": "https://youtube.com/watch?v=dQw4w9WgXcQ",
    }


async def test_a_lesson_without_video_has_no_video_meta(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        lesson = await make_lesson(client, await _section_with_lessons(client), "Reading")
    assert (lesson["videoUrl"], lesson["videoMeta"], lesson["duration"], lesson["description"]) == (
        None,
        None,
        0,
        None,
    )


async def test_update_lesson_reparses_a_new_video_url(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client)
        lesson = await make_lesson(client, section, "Intro", videoUrl="https://youtu.be/dQw4w9WgXcQ")
        arguments = {
            **_ids(section),
            "lessonId": lesson["id"],
            "videoUrl": "https://player.vimeo.com/video/76979871",
        }
        updated = ok(await client.call_tool("update_lesson", arguments))["lesson"]
    assert updated["videoUrl"] == "https://player.vimeo.com/video/76979871"
    assert updated["videoMeta"] == {
        "type": "vimeo",
        "videoId": "76979871",
        "thumbnailUrl": None,
        "originalUrl": "https://player.vimeo.com/video/76979871",
    }


async def test_update_lesson_null_video_url_removes_the_video(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client)
        lesson = await make_lesson(
            client, section, "Intro", videoUrl="https://youtu.be/dQw4w9WgXcQ", description="D"
        )
        arguments = {**_ids(section), "lessonId": lesson["id"], "videoUrl": None, "description": None}
        updated = ok(await client.call_tool("update_lesson", arguments))["lesson"]
    assert (updated["videoUrl"], updated["videoMeta"], updated["description"]) == (None, None, None)


async def test_update_lesson_changes_only_the_given_fields(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client, "A")
        lesson = await make_lesson(
            client, section, "Old", videoUrl="https://youtu.be/dQw4w9WgXcQ", duration=60
        )
        arguments = {**_ids(section), "lessonId": lesson["id"], "title": "New", "isPreview": True}
        updated = ok(await client.call_tool("update_lesson", arguments))["lesson"]
    unchanged = ("videoUrl", "videoMeta", "duration", "order", "createdAt")
    assert {k: updated[k] for k in unchanged} == {k: lesson[k] for k in unchanged}
    assert (updated["title"], updated["isPreview"]) == ("New", True)


@pytest.mark.parametrize("field", ["title", "duration", "isPreview", "order"])
async def test_update_lesson_refuses_null_for_required_fields(store, tenant, field):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client, "A")
        arguments = {**_ids(section), "lessonId": section["lessons"][0]["id"], field: None}
        failure = error(await client.call_tool("update_lesson", arguments))
    assert failure == {"error": "bad_request", "message": f"Invalid input: {field}: must not be null"}


INVALID_LESSONS = {
    "title missing": ({"title": None}, "title"),
    "title over 200": ({"title": "x" * 201}, "title"),
    "description over 5000": ({"description": "x" * 5001}, "description"),
    "duration negative": ({"duration": -1}, "duration"),
    "duration as string": ({"duration": "60"}, "duration"),
    "videoUrl unparseable": ({"videoUrl": "https://example.com/watch"}, "videoUrl"),
    "videoUrl not a URL": ({"videoUrl": "javascript:alert(1)"}, "videoUrl"),
}


@pytest.mark.parametrize(("fields", "path"), INVALID_LESSONS.values(), ids=INVALID_LESSONS.keys())
async def test_create_lesson_refuses_invalid_input_naming_the_field(store, tenant, fields, path):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client)
        arguments = {k: v for k, v in {**_ids(section), "title": "T", **fields}.items() if v is not None}
        failure = error(await client.call_tool("create_lesson", arguments))
    # videoUrl is any text in the schema: a link the video parser does not take breaks the rule
    # the operation states beyond it (422).
    assert failure["error"] == ("unprocessable" if path == "videoUrl" else "bad_request")
    assert f"{path}:" in failure["message"]
    assert await count_rows(store, Lesson) == 0


@pytest.mark.parametrize(
    ("fields", "path"), [({"videoUrl": "https://example.com/x"}, "videoUrl"), ({"duration": -5}, "duration")]
)
async def test_update_lesson_refuses_invalid_input(store, tenant, fields, path):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client, "A")
        arguments = {**_ids(section), "lessonId": section["lessons"][0]["id"], **fields}
        failure = error(await client.call_tool("update_lesson", arguments))
    assert failure["error"] == ("unprocessable" if path == "videoUrl" else "bad_request")
    assert f"{path}:" in failure["message"]


# ---- ids must belong together


async def test_a_section_of_another_course_is_not_found(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        section = await _section_with_lessons(client, "A")
        other = await make_course(client)
        failure = error(
            await client.call_tool("list_lessons", {"courseId": other["id"], "sectionId": section["id"]})
        )
    assert failure == {"error": "not_found", "message": "Section not found"}


async def test_a_lesson_of_another_section_is_not_found(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(
            client, sections=[{"title": "S1", "lessons": [{"title": "A"}]}, {"title": "S2"}]
        )
        first, second = course["sections"]
        arguments = {**_ids(second), "lessonId": first["lessons"][0]["id"]}
        failure = error(await client.call_tool("get_lesson", arguments))
    assert failure == {"error": "not_found", "message": "Lesson not found"}


# ---- REST


async def test_rest_routes_serve_the_curriculum(store, tenant):
    app = Starlette(routes=rest_routes(Runtime(store=store)))
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test/api/v1", headers=headers
    ) as http:
        created = await http.post("/courses", json=course_body())
        course_id = created.json()["course"]["id"]
        refused = await http.post(f"/courses/{course_id}/publish")
        section = await http.post(f"/courses/{course_id}/sections", json={"title": "S"})
        section_id = section.json()["section"]["id"]
        lesson = await http.post(f"/courses/{course_id}/sections/{section_id}/lessons", json={"title": "L"})
        lesson_path = f"/courses/{course_id}/sections/{section_id}/lessons/{lesson.json()['lesson']['id']}"
        fetched = await http.get(lesson_path)
        published = await http.post(f"/courses/{course_id}/publish")
        unpublished = await http.delete(f"/courses/{course_id}/publish")
        listed = await http.get("/courses", params={"status": "draft", "search": "COURSE"})
    # Publishing a course without lessons: a conflict with its state, which no request body could avoid.
    assert [created.status_code, refused.status_code, section.status_code, lesson.status_code] == [
        201,
        409,
        201,
        201,
    ]
    assert [fetched.status_code, published.status_code, unpublished.status_code] == [200, 200, 200]
    assert (published.json()["course"]["published"], unpublished.json()["course"]["published"]) == (
        True,
        False,
    )
    assert [c["id"] for c in listed.json()["data"]] == [course_id]
