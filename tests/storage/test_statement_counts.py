"""SQL statements per call on the hot paths, authentication included: update_progress in at most 5
SQL statements including authentication, a read in at most 2.

Calls go through the MCP server with a real API key, as a client's would, after a first call that
verified the key (a process verifies a key once; later calls only check that nothing was revoked).
Counted: every statement through the store's sessions and its compiled statements (`Store.statements_seen`).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from storage.student_export import EXPORT_STATEMENTS
from storage.tables import WebhookDelivery
from tests.support.clock import Clock
from tests.support.community_factories import new_comment, new_community, new_student, new_thread
from tests.support.databases import ENGINE
from tests.support.enrollment_factories import enroll, new_course, progress
from tests.support.factories import make_course, make_lesson, make_section, mcp_client, ok, statements
from tools.core.context import Services


async def _school(client) -> dict[str, Any]:
    course = await make_course(client)
    section = await make_section(client, course["id"], "Basics")
    lessons = [await make_lesson(client, section, f"Lesson {n}", duration=60) for n in range(3)]
    await ok_call(client, "publish_course", {"courseId": course["id"]})
    student = await ok_call(client, "register_student", {"name": "Ada", "email": "ada@example.com"})
    enrollment = await ok_call(
        client, "enroll_student", {"studentId": student["student"]["id"], "courseId": course["id"]}
    )
    community = await ok_call(client, "create_community", {"name": "Hall", "slug": "hall"})
    return {
        "course": course,
        "lessons": lessons,
        "student": student["student"],
        "enrollment": enrollment["enrollment"],
        "community": community["community"],
    }


async def ok_call(client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return ok(await client.call_tool(name, arguments))


def _calls(school: dict[str, Any], owner_user_id: str) -> dict[str, dict[str, Any]]:
    progress = {"enrollmentId": school["enrollment"]["id"], "lessonId": school["lessons"][1]["id"]}
    return {
        "whoami": {},
        "get_student": {"studentId": school["student"]["id"]},
        "export_student": {"studentId": school["student"]["id"]},
        "get_course": {"courseId": school["course"]["id"]},
        # The same update again: it changes nothing, so it writes only its audit record.
        "update_progress": {**progress, "completed": False, "watchedSeconds": 30},
        "get_course_insights": {"courseId": school["course"]["id"]},
        "get_school_report": {},
        "create_thread": {
            "communityId": school["community"]["id"],
            "title": "Hello",
            "content": "First post",
            "userId": owner_user_id,
        },
    }


# Authentication is one statement (the credential revision, `storage.credentials`); on SQLite a
# write's transaction starts with BEGIN IMMEDIATE (PostgreSQL begins implicitly, and locks rows
# with a statement where an operation must: update_progress locks the enrollment and its student).
EXPECTED = {
    "whoami": 2,  # + the producer with its owner
    "get_student": 2,  # + the student with its learning days
    # + (SQLite) BEGIN, the student with its learning days, one per part, the audit record
    "export_student": {"sqlite": 3 + EXPORT_STATEMENTS, "postgresql": 2 + EXPORT_STATEMENTS},
    "get_course": 2,  # + the course joined to its sections and lessons
    "get_course_insights": 3,  # + the course's figures, its lesson funnel
    "get_school_report": 4,  # + one statement per part: students, learning, community
    "update_progress": 4,  # + BEGIN / the lock, the state it starts from, the audit record
    "create_thread": {"sqlite": 7, "postgresql": 6},  # + BEGIN, the community with the author, the
    # thread, the audit record, and its event: the producer's event counter (with whether any webhook
    # endpoint is enabled: none here, so none is read), the event
}


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_statements_per_call_with_authentication(store, tenant, name):
    async with mcp_client(store, tenant.key) as client:
        school = await _school(client)
        arguments = _calls(school, tenant.owner_user_id)[name]
        await ok_call(client, name, arguments)  # the key is verified and kept; last use recorded
        with statements(store) as seen:
            await ok_call(client, name, arguments)
    expected = EXPECTED[name]
    assert len(seen) == (expected[ENGINE] if isinstance(expected, dict) else expected), "\n".join(seen)


async def test_a_write_reads_the_webhook_endpoints_only_while_one_is_enabled(store, tenant):
    """The event counter's upsert says whether the producer has an enabled endpoint: with one
    paused, create_thread reads none and queues nothing; enabled, it reads them and inserts the
    delivery."""
    async with mcp_client(store, tenant.key, services=Services(webhooks_allow_loopback=True)) as client:
        school = await _school(client)
        arguments = _calls(school, tenant.owner_user_id)["create_thread"]
        hook = await ok_call(client, "create_webhook", {"url": "http://127.0.0.1:9/hook"})
        await ok_call(client, "update_webhook", {"webhookId": hook["webhook"]["id"], "enabled": False})
        await ok_call(client, "create_thread", arguments)  # the key is verified and kept
        with statements(store) as paused:
            await ok_call(client, "create_thread", arguments)
        await ok_call(client, "update_webhook", {"webhookId": hook["webhook"]["id"], "enabled": True})
        with statements(store) as enabled:
            await ok_call(client, "create_thread", arguments)
    without = EXPECTED["create_thread"][ENGINE]
    assert len(paused) == without, "\n".join(paused)
    assert len(enabled) == without + 2, "\n".join(enabled)  # the endpoints, the delivery
    assert enabled[-3].startswith("SELECT webhook_endpoints.id"), enabled[-3]
    async with store.sessions() as session:
        deliveries = (await session.scalars(select(WebhookDelivery))).all()
    assert [d.endpoint_id for d in deliveries] == [hook["webhook"]["id"]]


async def test_a_progress_update_that_completes_a_lesson_writes_its_changes_and_events(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        school = await _school(client)
        await ok_call(client, "whoami", {})
        with statements(store) as seen:
            result = await ok_call(
                client,
                "update_progress",
                {
                    "enrollmentId": school["enrollment"]["id"],
                    "lessonId": school["lessons"][0]["id"],
                    "completed": True,
                },
            )
    assert [achievement["code"] for achievement in result["events"]["newAchievements"]] == ["first_lesson"]
    # Authentication, BEGIN / the lock, the state, the progress row, the enrollment's updatedAt,
    # today's learning day, the achievement, the audit record, the event counter (with whether any
    # webhook endpoint is enabled: none, so none is read), the events (lesson.completed,
    # achievement.unlocked) in one insert.
    assert len(seen) == 10, "\n".join(seen)


@pytest.mark.parametrize("name", ["get_course_insights", "get_school_report"])
async def test_insights_take_the_same_statements_for_a_larger_school(store, tenant, name):
    async with mcp_client(store, tenant.key) as client:
        school = await _school(client)
        course_id, lessons = school["course"]["id"], school["lessons"]
        for n in range(6):
            student = await ok_call(
                client, "register_student", {"name": f"S{n}", "email": f"s{n}@example.com"}
            )
            enrolled = await ok_call(
                client, "enroll_student", {"studentId": student["student"]["id"], "courseId": course_id}
            )
            for lesson in lessons[: n % 4]:
                await ok_call(
                    client,
                    "update_progress",
                    {
                        "enrollmentId": enrolled["enrollment"]["id"],
                        "lessonId": lesson["id"],
                        "completed": True,
                    },
                )
        arguments = _calls(school, tenant.owner_user_id)[name]
        await ok_call(client, name, arguments)
        with statements(store) as seen:
            await ok_call(client, name, arguments)
    assert len(seen) == EXPECTED[name], "\n".join(seen)


async def _insights_school(client, clock, *, size: int) -> str:
    """`size` students enrolled in a course, one lesson done each, and a community with `size`
    threads of two comments each; the clock then 30 days on. The community's id."""
    course, lessons = await new_course(client, 3)
    community = await new_community(client)
    for n in range(size):
        student = await new_student(client, f"Student {n}")
        enrollment = await enroll(client, student, course)
        await progress(client, enrollment["id"], lessons[0])
        await ok_call(
            client, "add_member", {"communityId": community["id"], "userId": student, "role": "member"}
        )
        thread = await new_thread(client, community["id"], student)
        for _ in range(2):
            await new_comment(client, community["id"], thread["id"], student)
    clock.advance(days=30)
    return community["id"]


# Authentication, then: the page, its total (the page is full), the page's next lessons and its
# students' streaks; the community, its counts, its posts per day, its posters, its waiting threads.
INSIGHT_STATEMENTS = {"find_students_needing_attention": 5, "get_community_insights": 6}


@pytest.mark.parametrize("name", list(INSIGHT_STATEMENTS))
async def test_insights_take_a_fixed_number_of_statements_whatever_the_size(store, tenant_factory, name):
    seen_by_size = {}
    for size in (3, 12):
        tenant, clock = await tenant_factory(f"School {size}"), Clock()
        async with mcp_client(store, tenant.key, clock=clock) as client:
            community_id = await _insights_school(client, clock, size=size)
            arguments = (
                {"limit": 2} if name == "find_students_needing_attention" else {"communityId": community_id}
            )
            await ok_call(client, name, arguments)
            with statements(store) as seen:
                answer = await ok_call(client, name, arguments)
        assert answer  # a page, or the community's insights
        seen_by_size[size] = len(seen)
    assert seen_by_size == {3: INSIGHT_STATEMENTS[name], 12: INSIGHT_STATEMENTS[name]}
