"""Courses: the reference example, validation, slugs, publishing, listing, deletes, read cost, access."""

from __future__ import annotations

import pytest

import storage.courses as courses_store
from storage.tables import Course, Lesson, Section
from tests.support.factories import (
    count_rows,
    course_body,
    error,
    hints_of,
    make_course,
    make_lesson,
    make_section,
    mcp_client,
    ok,
    principal_of,
    statements,
)
from tests.support.reference_examples import REFERENCE_COURSE
from tools.core.runner import run_operation
from tools.domains.courses import CourseDetailResult
from tools.registry import OPERATIONS_BY_NAME

COURSE_READ_TOOLS = {"list_courses", "get_course", "list_sections", "list_lessons", "get_lesson"}
COURSE_WRITE_TOOLS = {
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
}


def _lesson_summary(lesson: dict) -> tuple:
    return (
        lesson["title"],
        lesson["duration"],
        lesson["isPreview"],
        lesson["order"],
        lesson["videoUrl"],
        lesson["videoMeta"],
    )


# ---- acceptance 1: the reference example


async def test_reference_example_creates_that_curriculum_in_order(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        created = ok(await client.call_tool("create_course", REFERENCE_COURSE))["course"]
        course = ok(await client.call_tool("get_course", {"courseId": created["id"]}))["course"]

    assert course == created
    assert (course["title"], course["slug"], course["price"], course["level"], course["published"]) == (
        "Mastering TypeScript",
        "mastering-typescript",
        4999,
        "intermediate",
        False,
    )
    assert (course["sectionCount"], course["lessonCount"], course["totalDuration"]) == (2, 3, 1800)
    assert [(s["title"], s["order"]) for s in course["sections"]] == [
        ("Getting Started", 0),
        ("Type System Deep Dive", 1),
    ]
    assert [[_lesson_summary(x) for x in s["lessons"]] for s in course["sections"]] == [
        [
            (
                "What is TypeScript?",
                600,
                True,
                0,
                "https://www.youtube.com/embed/abc123",
                {
                    "type": "youtube",
                    "videoId": "abc123",
                    "thumbnailUrl": "https://img.youtube.com/vi/abc123/maxresdefault.jpg",
                    "originalUrl": "https://youtube.com/watch?v=abc123",
                },
            ),
            (
                "Setting Up Your Environment",
                480,
                False,
                1,
                "https://player.vimeo.com/video/123456789",
                {
                    "type": "vimeo",
                    "videoId": "123456789",
                    "thumbnailUrl": None,
                    "originalUrl": "https://vimeo.com/123456789",
                },
            ),
        ],
        [
            (
                "Primitive Types",
                720,
                False,
                0,
                "https://cdn.example.com/video.mp4",
                {
                    "type": "direct",
                    "videoId": None,
                    "thumbnailUrl": None,
                    "originalUrl": "https://cdn.example.com/video.mp4",
                },
            )
        ],
    ]
    first = course["sections"][0]["lessons"][0]
    assert (first["description"], first["courseId"], first["sectionId"]) == (
        "An introduction to TypeScript",
        course["id"],
        course["sections"][0]["id"],
    )


async def test_create_course_defaults(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client)
    assert {k: course[k] for k in ("price", "isFree", "level", "published", "publishedAt", "sections")} == {
        "price": 0,
        "isFree": False,
        "level": None,
        "published": False,
        "publishedAt": None,
        "sections": [],
    }


# ---- acceptance 2: validation


def _nested(**lesson) -> list[dict]:
    return [{"title": "One", "lessons": [{"title": "L", **lesson}]}]


INVALID_COURSES = {
    "title missing": ({"title": None}, "title"),
    "title blank": ({"title": "   "}, "title"),
    "title over 200": ({"title": "x" * 201}, "title"),
    "slug uppercase": ({"slug": "Bad-Slug"}, "slug"),
    "slug double hyphen": ({"slug": "a--b"}, "slug"),
    "slug leading hyphen": ({"slug": "-ab"}, "slug"),
    "slug trailing hyphen": ({"slug": "ab-"}, "slug"),
    "slug underscore": ({"slug": "a_b"}, "slug"),
    "slug space": ({"slug": "a b"}, "slug"),
    "description over 10000": ({"description": "x" * 10001}, "description"),
    "shortDescription over 500": ({"shortDescription": "x" * 501}, "shortDescription"),
    "price negative": ({"price": -1}, "price"),
    "price fractional": ({"price": 9.99}, "price"),
    "price as string": ({"price": "100"}, "price"),
    "level unknown": ({"level": "expert"}, "level"),
    "categoryId unknown": ({"categoryId": "cat_nope"}, "categoryId"),
    "thumbnailUrl not http": ({"thumbnailUrl": "ftp://example.com/a.png"}, "thumbnailUrl"),
    "section title blank": ({"sections": [{"title": ""}]}, "sections[0].title"),
    "lesson title over 200": ({"sections": _nested(title="x" * 201)}, "sections[0].lessons[0].title"),
    "lesson description over 5000": (
        {"sections": _nested(description="x" * 5001)},
        "sections[0].lessons[0].description",
    ),
    "lesson duration negative": ({"sections": _nested(duration=-1)}, "sections[0].lessons[0].duration"),
    "lesson duration fractional": ({"sections": _nested(duration=1.5)}, "sections[0].lessons[0].duration"),
    "lesson videoUrl unparseable": (
        {"sections": _nested(videoUrl="https://example.com/page")},
        "sections[0].lessons[0].videoUrl",
    ),
    "unknown field": ({"author": "me"}, "author"),
}
BEYOND_THE_SCHEMA = {"categoryId": "not_found", "sections[0].lessons[0].videoUrl": "unprocessable"}
"""Fields whose refusal above breaks a rule the operation states beyond its schema: answered with
that rule's status (an id naming nothing, a video link the parser does not take), not 400."""


@pytest.mark.parametrize(("fields", "path"), INVALID_COURSES.values(), ids=INVALID_COURSES.keys())
async def test_create_course_refuses_invalid_input_naming_the_field(store, tenant, fields, path):
    body = {k: v for k, v in course_body(**fields).items() if v is not None}
    async with mcp_client(store, tenant.key) as client:
        failure = error(await client.call_tool("create_course", body))
    assert failure["error"] == BEYOND_THE_SCHEMA.get(path, "bad_request")
    assert f"{path}:" in failure["message"]
    assert await count_rows(store, Course) == 0


async def test_failed_nested_create_leaves_no_rows(store, tenant):
    body = course_body(
        sections=[
            {"title": "Fine", "lessons": [{"title": "Good", "videoUrl": "https://youtu.be/dQw4w9WgXcQ"}]},
            {"title": "Broken", "lessons": [{"title": "Bad", "videoUrl": "https://example.com/not-a-video"}]},
        ]
    )
    async with mcp_client(store, tenant.key) as client:
        failure = error(await client.call_tool("create_course", body))
    assert failure["error"] == "unprocessable"
    assert "sections[1].lessons[0].videoUrl:" in failure["message"]
    assert [await count_rows(store, table) for table in (Course, Section, Lesson)] == [0, 0, 0]


async def test_slug_taken_by_another_producer_is_conflict(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        await make_course(client, slug="shared-slug")
    async with mcp_client(store, tenant.key) as client:
        failure = error(await client.call_tool("create_course", course_body(slug="shared-slug")))
    assert failure == {"error": "conflict", "message": "A course with slug shared-slug already exists"}


async def test_slug_race_past_the_check_is_conflict_not_a_crash(store, tenant, monkeypatch):
    async with mcp_client(store, tenant.key) as client:
        await make_course(client, slug="raced")

        async def never_taken(*args, **kwargs):
            return False  # as if a concurrent create committed between the check and the insert

        monkeypatch.setattr(courses_store, "slug_taken", never_taken)
        failure = error(await client.call_tool("create_course", course_body(slug="raced")))
    assert failure["error"] == "conflict"
    assert await count_rows(store, Course) == 1


async def test_update_course_to_a_taken_slug_is_conflict(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        await make_course(client, slug="first")
        second = await make_course(client, slug="second")
        failure = error(await client.call_tool("update_course", {"courseId": second["id"], "slug": "first"}))
    assert failure["error"] == "conflict"


async def test_update_course_keeping_its_own_slug_is_fine(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, slug="mine")
        updated = ok(
            await client.call_tool("update_course", {"courseId": course["id"], "slug": "mine", "price": 100})
        )
    assert (updated["course"]["slug"], updated["course"]["price"]) == ("mine", 100)


# ---- update


async def test_update_course_changes_only_the_given_fields(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, title="Old", description="Keep me", price=500)
        updated = ok(await client.call_tool("update_course", {"courseId": course["id"], "title": "New"}))[
            "course"
        ]
    assert (updated["title"], updated["description"], updated["price"]) == ("New", "Keep me", 500)
    assert updated["updatedAt"] >= course["updatedAt"]


async def test_update_course_null_clears_nullable_fields(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(
            client,
            description="D",
            shortDescription="S",
            thumbnailUrl="https://x.example/t.png",
            level="advanced",
        )
        cleared = {"description": None, "shortDescription": None, "thumbnailUrl": None, "level": None}
        updated = ok(await client.call_tool("update_course", {"courseId": course["id"], **cleared}))["course"]
    assert {k: updated[k] for k in cleared} == cleared


@pytest.mark.parametrize("field", ["title", "slug", "price", "isFree", "categoryId"])
async def test_update_course_refuses_null_for_required_fields(store, tenant, field):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client)
        failure = error(await client.call_tool("update_course", {"courseId": course["id"], field: None}))
    assert failure == {"error": "bad_request", "message": f"Invalid input: {field}: must not be null"}


@pytest.mark.parametrize(
    ("fields", "path"),
    [({"price": -5}, "price"), ({"categoryId": "cat_nope"}, "categoryId"), ({"slug": "Nope"}, "slug")],
    ids=["price negative", "categoryId unknown", "slug invalid"],
)
async def test_update_course_refuses_invalid_input(store, tenant, fields, path):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client)
        failure = error(await client.call_tool("update_course", {"courseId": course["id"], **fields}))
    assert failure["error"] == BEYOND_THE_SCHEMA.get(path, "bad_request")
    assert f"{path}:" in failure["message"]


# ---- acceptance 3: publishing and listing


async def test_publishing_an_empty_course_is_refused(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, sections=[{"title": "Empty section"}])
        failure = error(await client.call_tool("publish_course", {"courseId": course["id"]}))
        after = ok(await client.call_tool("get_course", {"courseId": course["id"]}))["course"]
    assert failure == {
        "error": "conflict",
        "message": "This course has no lessons: add at least one before publishing",
    }
    assert after["published"] is False


async def test_publishing_after_adding_a_lesson_works(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client)
        section = await make_section(client, course["id"], "Intro")
        await make_lesson(client, section, "Welcome")
        published = ok(await client.call_tool("publish_course", {"courseId": course["id"]}))["course"]
    assert published["published"] is True
    assert published["publishedAt"] is not None


async def test_creating_a_published_course_without_lessons_is_refused(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        failure = error(await client.call_tool("create_course", course_body(published=True)))
    assert failure["error"] == "unprocessable"
    assert "published:" in failure["message"]


async def test_creating_a_published_course_with_lessons_publishes_it(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, published=True, sections=_nested())
    assert course["published"] is True
    assert course["publishedAt"] == course["createdAt"]


async def test_publishing_twice_keeps_the_first_published_at(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, published=True, sections=_nested())
        again = ok(await client.call_tool("publish_course", {"courseId": course["id"]}))["course"]
    assert again["publishedAt"] == course["publishedAt"]


async def test_unpublishing_returns_the_course_to_draft(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, published=True, sections=_nested())
        draft = ok(await client.call_tool("unpublish_course", {"courseId": course["id"]}))["course"]
        again = ok(await client.call_tool("unpublish_course", {"courseId": course["id"]}))["course"]
    assert (draft["published"], draft["publishedAt"]) == (False, None)
    assert again == draft


async def _listed_titles(client, **arguments) -> list[str]:
    return [c["title"] for c in ok(await client.call_tool("list_courses", arguments))["data"]]


async def test_list_courses_filters_by_status(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        await make_course(client, title="Live", published=True, sections=_nested())
        await make_course(client, title="Draft")
        by_status = {
            status: await _listed_titles(client, status=status) for status in ("published", "draft", "all")
        }
        default = await _listed_titles(client)
    assert by_status == {"published": ["Live"], "draft": ["Draft"], "all": ["Draft", "Live"]}
    assert default == by_status["all"]


async def test_list_courses_refuses_an_unknown_status(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        failure = error(await client.call_tool("list_courses", {"status": "archived"}))
    assert failure["error"] == "bad_request"
    assert "status:" in failure["message"]


async def test_list_courses_searches_titles_case_insensitively(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        for title in ("Mastering TypeScript", "typescript for teams", "Python 101", "100% Pure_CSS"):
            await make_course(client, title=title)
        found = await _listed_titles(client, search="TYPESCRIPT")
        literal = await _listed_titles(client, search="0% pure_")
    assert found == ["typescript for teams", "Mastering TypeScript"]
    assert literal == ["100% Pure_CSS"]


async def test_list_courses_paginates_newest_first(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        for n in range(5):
            await make_course(client, title=f"C{n}")
        page = ok(await client.call_tool("list_courses", {"page": 2, "limit": 2}))
    assert [c["title"] for c in page["data"]] == ["C2", "C1"]
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 5, "totalPages": 3, "hasMore": True}
    assert "sections" not in page["data"][0]


# ---- acceptance 5: deleting a course


async def test_deleting_a_course_removes_its_sections_and_lessons(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        doomed = ok(
            await client.call_tool("create_course", course_body(sections=REFERENCE_COURSE["sections"]))
        )
        kept = await make_course(client, sections=_nested())
        deleted = ok(await client.call_tool("delete_course", {"courseId": doomed["course"]["id"]}))
        gone = error(await client.call_tool("get_course", {"courseId": doomed["course"]["id"]}))
    assert deleted == {
        "deleted": True,
        "id": doomed["course"]["id"],
        "sectionsDeleted": 2,
        "lessonsDeleted": 3,
        "enrollmentsDeleted": 0,
    }
    assert gone == {"error": "not_found", "message": "Course not found"}
    assert [await count_rows(store, table) for table in (Course, Section, Lesson)] == [1, 1, 1]
    assert kept["lessonCount"] == 1


# ---- acceptance 6: the read cost of get_course does not grow with the curriculum


async def _statements_for_get_course(store, tenant, course_id: str) -> list[str]:
    with statements(store) as seen:
        result = await run_operation(
            OPERATIONS_BY_NAME["get_course"],
            {"courseId": course_id},
            store=store,
            principal=principal_of(tenant),
        )
    assert isinstance(result, CourseDetailResult)
    assert result.course.id == course_id
    return seen


async def test_get_course_statement_count_is_the_same_for_1_and_1000_lessons(store, tenant):
    principal = principal_of(tenant)
    create = OPERATIONS_BY_NAME["create_course"]
    small = await run_operation(create, course_body(sections=_nested()), store=store, principal=principal)
    sections = [{"title": f"S{s}", "lessons": [{"title": f"L{s}.{n}"} for n in range(20)]} for s in range(50)]
    large = await run_operation(create, course_body(sections=sections), store=store, principal=principal)
    assert isinstance(small, CourseDetailResult) and isinstance(large, CourseDetailResult)
    assert large.course.lesson_count == 1000

    for_small = await _statements_for_get_course(store, tenant, small.course.id)
    for_large = await _statements_for_get_course(store, tenant, large.course.id)
    assert len(for_small) == len(for_large) == 1  # the course joined to its sections and their lessons


# ---- tenancy and permissions, for every course, section and lesson tool


async def test_list_courses_never_shows_another_producers_courses(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        await make_course(client, title="Theirs")
    async with mcp_client(store, tenant.key) as client:
        await make_course(client, title="Mine")
        listed = ok(await client.call_tool("list_courses", {"search": "i"}))
    assert [c["title"] for c in listed["data"]] == ["Mine"]
    assert listed["pagination"]["total"] == 1


async def test_course_tools_declare_their_permissions_and_hints(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in COURSE_READ_TOOLS | COURSE_WRITE_TOOLS:
        op = OPERATIONS_BY_NAME[name]
        assert op.permission == ("courses:read" if name in COURSE_READ_TOOLS else "courses:write")
        expected = (
            name in COURSE_READ_TOOLS,
            name.startswith("delete_"),
            not name.startswith("create_"),
            False,
        )
        assert hints_of(tools[name]) == expected, name
