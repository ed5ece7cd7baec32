"""Events (the outbox and the feed): written with the change, numbered per producer,
read in order from a cursor; nothing from a rolled-back write, nothing of another producer."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import anyio
import anyio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import col

from storage.tables import Event
from tests.support.community_factories import new_community, new_student, new_thread
from tests.support.factories import course_body, error, make_course, mcp_client, ok
from tests.support.rest import http_app, rest_client
from tools.core.context import Services
from tools.domains.event_feed import (
    CURSOR_PATTERN,
    MAX_CURSOR_DIGITS,
    ListEventsInput,
    decode_cursor,
    encode_cursor,
)


async def feed(client, **arguments) -> dict:
    return ok(await client.call_tool("list_events", arguments))


async def all_events(client, **filters) -> list[dict]:
    """Every event, paging through the feed from the start."""
    seen, cursor = [], None
    while True:
        page = await feed(client, **filters, **({"cursor": cursor} if cursor else {}), limit=100)
        seen.extend(page["data"])
        cursor = page["cursor"]
        if not page["hasMore"]:
            return seen


async def test_a_write_records_its_event_with_the_resource_as_the_api_returns_it(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, title="Events 101")
        updated = ok(
            await client.call_tool("update_course", {"courseId": course["id"], "title": "Events 102"})
        )["course"]
        page = await feed(client)
    first, second = page["data"]
    assert (first["type"], first["sequence"], first["data"]) == ("course.created", 1, course)
    assert (second["type"], second["sequence"], second["data"]) == ("course.updated", 2, updated)
    assert (
        first["keyId"] == tenant.key_id
        and first["occurredAt"].endswith("Z")
        and first["id"].startswith("evt_")
    )
    assert page["hasMore"] is False


async def test_a_rolled_back_write_leaves_no_event(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        await make_course(client, slug="taken-slug")
        refused = error(await client.call_tool("create_course", course_body(slug="taken-slug")))
        # A nested create that fails on its last lesson rolls back whole: no course, no event.
        sections = [{"title": "S", "lessons": [{"title": "ok"}, {"title": "bad", "videoUrl": "ftp://nope"}]}]
        broken = error(await client.call_tool("create_course", course_body(sections=sections)))
        events = await all_events(client)
    assert (
        refused["error"] == "conflict" and broken["error"] == "unprocessable"
    )  # the video parser refused it
    assert [event["type"] for event in events] == ["course.created"]


async def test_progress_announces_the_lesson_the_course_the_certificate_and_achievements(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        sections = [{"title": "Only", "lessons": [{"title": "One"}]}]
        course = await make_course(client, sections=sections)
        lesson_id = course["sections"][0]["lessons"][0]["id"]
        student_id = await new_student(client)
        enrollment = ok(
            await client.call_tool("enroll_student", {"studentId": student_id, "courseId": course["id"]})
        )["enrollment"]
        ok(
            await client.call_tool(
                "update_progress",
                {"enrollmentId": enrollment["id"], "lessonId": lesson_id, "completed": True},
            )
        )
        # Completing it again announces nothing new.
        ok(
            await client.call_tool(
                "update_progress",
                {"enrollmentId": enrollment["id"], "lessonId": lesson_id, "completed": True},
            )
        )
        events = await all_events(client, studentId=student_id)
    types = [event["type"] for event in events]
    assert types[:4] == ["student.registered", "enrollment.created", "lesson.completed", "course.completed"]
    assert "certificate.issued" in types and "achievement.unlocked" in types
    assert types.count("lesson.completed") == 1
    lesson_completed = next(event for event in events if event["type"] == "lesson.completed")["data"]
    assert lesson_completed["lessonId"] == lesson_id and lesson_completed["courseId"] == course["id"]
    assert [event["sequence"] for event in events] == sorted(event["sequence"] for event in events)


async def test_the_feed_filters_by_type_and_resource(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client)
        other = await make_course(client)
        community = await new_community(client)
        student_id = await new_student(client)
        ok(await client.call_tool("add_member", {"communityId": community["id"], "userId": student_id}))
        await new_thread(client, community["id"], student_id, title="Hello")
        by_type = await all_events(client, types=["thread.created", "member.added"])
        by_course = await all_events(client, courseId=other["id"])
        by_community = await all_events(client, communityId=community["id"])
    assert [event["type"] for event in by_type] == ["member.added", "thread.created"]
    assert [event["data"]["id"] for event in by_course] == [other["id"]] and course["id"] != other["id"]
    assert [event["type"] for event in by_community] == [
        "community.created",
        "member.added",
        "thread.created",
    ]


async def test_a_bad_cursor_or_event_type_is_refused_naming_it(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        bad_cursor = error(await client.call_tool("list_events", {"cursor": "not-ours"}))
        bad_type = error(await client.call_tool("list_events", {"types": ["course.exploded"]}))
    assert bad_cursor["error"] == "bad_request" and "cursor" in bad_cursor["message"]
    assert bad_type["error"] == "bad_request" and "course.exploded" in bad_type["message"]


# Sequence numbers a 64-bit column cannot hold (the pentest's), and the largest a cursor may carry.
BEYOND_64_BITS = [2**63, 2**64, 10**30]
LARGEST_CURSOR_SEQUENCE = 10**MAX_CURSOR_DIGITS - 1


async def test_a_cursor_beyond_64_bits_is_refused_naming_it_over_mcp_and_rest(store, tenant):
    async with mcp_client(store, tenant.key) as client, rest_client(http_app(store), tenant.key) as http:
        await make_course(client)
        for sequence in BEYOND_64_BITS:
            over_mcp = error(await client.call_tool("list_events", {"cursor": encode_cursor(sequence)}))
            over_rest = await http.get("/events", params={"cursor": encode_cursor(sequence)})
            assert over_mcp["error"] == "bad_request" and over_mcp["message"].startswith(
                "Invalid input: cursor: "
            ), over_mcp
            assert over_rest.status_code == 400, (sequence, over_rest.status_code, over_rest.text)
            assert over_rest.json()["message"].startswith("Invalid input: cursor: "), over_rest.text


async def test_a_well_formed_cursor_past_the_end_of_the_feed_answers_an_empty_page_with_the_same_cursor(
    store, tenant
):
    largest = encode_cursor(LARGEST_CURSOR_SEQUENCE)
    assert re.fullmatch(CURSOR_PATTERN, largest) and not re.fullmatch(
        CURSOR_PATTERN, encode_cursor(LARGEST_CURSOR_SEQUENCE + 1)
    )
    async with mcp_client(store, tenant.key) as client, rest_client(http_app(store), tenant.key) as http:
        await make_course(client)
        over_rest = await http.get("/events", params={"cursor": largest})
        for page in (await feed(client, cursor=largest), over_rest.json()):
            assert page == {"data": [], "cursor": largest, "hasMore": False}, page
        # A cursor the feed has not reached yet (sequence 5 of 1) answers what comes after it.
        assert (await feed(client, cursor=encode_cursor(5)))["data"] == []
        assert len((await feed(client, cursor=encode_cursor(0)))["data"]) == 1
    assert over_rest.status_code == 200


@settings(max_examples=300, deadline=None, database=None)
@given(
    cursor=st.from_regex(CURSOR_PATTERN, fullmatch=True),
    anything=st.text(alphabet="c2VxOjAEMNQgwz-_=:seq0189", max_size=40),
)
def test_the_cursor_pattern_the_document_states_is_exactly_what_the_feed_takes(cursor, anything):
    assert 0 <= decode_cursor(cursor) < 10**MAX_CURSOR_DIGITS, cursor
    try:
        ListEventsInput.model_validate({"cursor": anything})
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted is (re.fullmatch(CURSOR_PATTERN, anything) is not None), anything


async def test_another_producers_events_never_appear(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        await make_course(client)
    async with mcp_client(store, tenant.key) as client:
        assert (await feed(client))["data"] == []
        # Its sequence numbers are its own: a cursor past them shows nothing of the other school.
        assert (await feed(client, cursor=encode_cursor(0)))["data"] == []
        mine = await make_course(client)
        assert [event["data"]["id"] for event in (await feed(client))["data"]] == [mine["id"]]
        assert (await feed(client))["data"][0]["sequence"] == 1


async def test_cursor_paging_sees_every_event_once_in_order_while_writes_go_on(store, tenant):
    writers, per_writer = 4, 15
    seen: list[dict] = []
    done = anyio.Event()

    async def write(n: int) -> None:
        async with mcp_client(store, tenant.key) as client:
            for i in range(per_writer):
                ok(
                    await client.call_tool(
                        "register_student", {"name": f"W{n} {i}", "email": f"w{n}-{i}@example.com"}
                    )
                )

    async def read() -> None:
        async with mcp_client(store, tenant.key) as client:
            cursor = None
            while True:
                finished = done.is_set()
                page = await feed(client, limit=7, **({"cursor": cursor} if cursor else {}))
                seen.extend(page["data"])
                cursor = page["cursor"]
                if finished and not page["hasMore"]:
                    return
                await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as readers:
        readers.start_soon(read)
        async with anyio.create_task_group() as writing:
            for n in range(writers):
                writing.start_soon(write, n)
        done.set()
    sequences = [event["sequence"] for event in seen]
    assert sequences == list(range(1, writers * per_writer + 1))


async def test_events_past_the_retention_period_are_pruned(store, tenant):
    clock_now: list[datetime | None] = [None]
    from storage.ids import utcnow

    start = utcnow()

    def clock():
        return clock_now[0] or start

    async with mcp_client(
        store, tenant.key, clock=clock, services=Services(event_retention=timedelta(days=1))
    ) as client:
        ok(await client.call_tool("register_student", {"name": "Old", "email": "old@example.com"}))
        clock_now[0] = start + timedelta(days=2)
        for i in range(100):  # crossing sequence 100 prunes
            ok(
                await client.call_tool(
                    "register_student", {"name": f"New {i}", "email": f"new{i}@example.com"}
                )
            )
    async with store.sessions() as session:
        kept = (await session.scalars(select(col(Event.sequence)).order_by(col(Event.sequence)))).all()
    assert kept[0] == 2 and len(kept) == 100


async def test_the_feed_over_rest(store, tenant):
    app = http_app(store)
    async with rest_client(app, tenant.key) as http:
        created = await http.post("/students", json={"name": "Rest Student", "email": "rest@example.com"})
        assert created.status_code == 201
        page = await http.get("/events", params={"types": "student.registered"})
    assert page.status_code == 200, page.text
    body = page.json()
    assert [event["data"]["id"] for event in body["data"]] == [created.json()["student"]["id"]] and body[
        "cursor"
    ]
