"""get_course_insights and get_school_report: figures counted by hand from a small school built
through the tools, on a clock the test moves; window edges; tenant isolation; permissions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.support.clock import Clock
from tests.support.community_factories import call, new_community, new_student, new_thread, refuse
from tests.support.enrollment_factories import enroll, progress
from tests.support.factories import add_key, make_course, mcp_client

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
EDGE = datetime(2026, 3, 26, tzinfo=UTC)
"""Midnight starting the 7 UTC days ending on NOW's day: the first instant of 'the last 7 days'."""
WEEK = timedelta(days=7)
SECOND = timedelta(seconds=1)


def _z(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _complete(
    client: Client, clock: Clock, at: datetime, enrollment_id: str, lessons: list[str], **fields
):
    clock.now = at
    for lesson_id in lessons:
        await progress(client, enrollment_id, lesson_id, **fields)


async def _school(client: Client, clock: Clock, owner_user_id: str) -> dict[str, Any]:
    """Four lessons in two sections; five students enrolled at T0:
    s1 completes all four at T0+2d; s2 L1-L3 at EDGE exactly; s3 L1-L2 at EDGE-1s;
    s4 L1-L2 at T0+1d-1s (the day before the last 30 days); s5 nothing. Funnel 4, 4, 2, 1: the
    third lesson loses half."""
    clock.now = T0
    sections = [
        {"title": "Start", "lessons": [{"title": "Welcome"}, {"title": "Setup"}]},
        {"title": "Deeper", "lessons": [{"title": "Loops"}, {"title": "Functions"}]},
    ]
    course = await make_course(client, title="Python 101", sections=sections)
    lessons = [lesson["id"] for section in course["sections"] for lesson in section["lessons"]]
    students = [await new_student(client, f"Student {n}") for n in range(1, 6)]
    enrollments = [(await enroll(client, student, course["id"]))["id"] for student in students]
    s1, s2, s3, s4, _ = enrollments
    await _complete(client, clock, T0 + timedelta(days=2), s1, lessons[:1], watchedSeconds=60)
    await _complete(client, clock, T0 + timedelta(days=2), s1, lessons[1:])
    await _complete(client, clock, EDGE, s2, lessons[:1], watchedSeconds=120)
    await _complete(client, clock, EDGE, s2, lessons[1:3])
    await _complete(client, clock, EDGE - SECOND, s3, lessons[:1], watchedSeconds=30)
    await _complete(client, clock, EDGE - SECOND, s3, lessons[1:2])
    await _complete(client, clock, T0 + timedelta(days=1) - SECOND, s4, lessons[:1], watchedSeconds=30)
    await _complete(client, clock, T0 + timedelta(days=1) - SECOND, s4, lessons[1:2])
    return {"course": course, "lessons": lessons}


async def test_course_insights_count_enrollments_activity_and_the_lesson_funnel(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        school = await _school(client, clock, tenant.owner_user_id)
        clock.now = NOW
        insights = (await call(client, "get_course_insights", courseId=school["course"]["id"]))["insights"]
    lessons = school["lessons"]
    assert insights["courseTitle"] == "Python 101" and insights["asOf"] == _z(NOW)
    assert (insights["enrollments"], insights["completed"], insights["certificates"]) == (5, 1, 1)
    assert insights["completionRate"] == 0.2
    assert insights["averageDaysToComplete"] == 2.0
    # Last progress: s1 March 3 (the first of the last 30 days), s2 EDGE (on the edge: in), s3 EDGE-1s,
    # s4 March 2 (out); s5 none.
    assert insights["activeLast7Days"] == {"since": _z(EDGE), "until": _z(NOW), "learners": 1}
    assert insights["activeLast30Days"] == {
        "since": "2026-03-03T00:00:00.000Z",
        "until": _z(NOW),
        "learners": 3,
    }
    funnel = insights["funnel"]
    assert [step["lessonTitle"] for step in funnel] == ["Welcome", "Setup", "Loops", "Functions"]
    assert [step["sectionTitle"] for step in funnel] == ["Start", "Start", "Deeper", "Deeper"]
    assert [step["lessonId"] for step in funnel] == lessons
    assert [step["completed"] for step in funnel] == [4, 4, 2, 1]
    assert [step["started"] for step in funnel] == [4, 4, 2, 1]
    assert [step["completionRate"] for step in funnel] == [0.8, 0.8, 0.4, 0.2]
    assert funnel[0]["averageWatchedSeconds"] == 60.0  # (60 + 120 + 30 + 30) / 4
    assert funnel[1]["averageWatchedSeconds"] == 0.0
    assert insights["largestDrop"] == {
        "lessonId": lessons[2],
        "lessonTitle": "Loops",
        "position": 3,
        "previousLessonId": lessons[1],
        "previousLessonTitle": "Setup",
        "lost": 2,
        "lostPercent": 50.0,
    }


async def test_course_insights_of_an_empty_course_have_no_drop_and_no_average(store, tenant):
    async with mcp_client(store, tenant.key, clock=Clock()) as client:
        course = await make_course(
            client, title="Empty", sections=[{"title": "S", "lessons": [{"title": "L"}]}]
        )
        insights = (await call(client, "get_course_insights", courseId=course["id"]))["insights"]
    assert (insights["enrollments"], insights["completionRate"], insights["averageDaysToComplete"]) == (
        0,
        0.0,
        None,
    )
    assert insights["funnel"][0]["averageWatchedSeconds"] is None and insights["largestDrop"] is None


async def test_another_producers_course_is_not_found(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client)
    async with mcp_client(store, other.key) as client:
        refused = await refuse(client, "get_course_insights", courseId=course["id"])
    assert refused == {"error": "not_found", "message": "Course not found"}


async def _tool_names(store, tenant, grants: list[str]) -> set[str]:
    async with mcp_client(store, await add_key(store, tenant, grants)) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def test_course_insights_need_both_courses_and_enrollments_read(store, tenant):
    assert "get_course_insights" not in await _tool_names(store, tenant, ["courses:read"])
    assert "get_course_insights" not in await _tool_names(store, tenant, ["enrollments:*"])
    assert "get_course_insights" in await _tool_names(store, tenant, ["courses:read", "enrollments:read"])
    async with mcp_client(store, await add_key(store, tenant, ["courses:read"])) as client:
        with pytest.raises(MCPError, match="Unknown tool: get_course_insights"):
            await client.call_tool("get_course_insights", {"courseId": "crs_x"})


async def test_school_report_compares_the_last_7_days_with_the_7_before(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        await _school(client, clock, tenant.owner_user_id)
        clock.now = NOW - timedelta(days=8)
        await new_student(client, "Previous")
        clock.now = EDGE  # on the edge: in the period, not the previous one
        newcomer = await new_student(client, "Edge")
        short = await make_course(
            client, title="Short", sections=[{"title": "S", "lessons": [{"title": "Only"}]}]
        )
        enrollment = (await enroll(client, newcomer, short["id"]))["id"]
        community = await new_community(client)
        await new_thread(client, community["id"], tenant.owner_user_id)
        clock.now = NOW - timedelta(days=10)
        await new_thread(client, community["id"], tenant.owner_user_id)
        clock.now = NOW - SECOND
        await new_student(client, "Latest")
        thread = await new_thread(client, community["id"], tenant.owner_user_id)
        for _ in range(2):
            await call(
                client,
                "create_comment",
                communityId=community["id"],
                threadId=thread["id"],
                userId=tenant.owner_user_id,
                content="Hi",
            )
        await progress(client, enrollment, short["sections"][0]["lessons"][0]["id"])  # completes Short
        clock.now = NOW
        report = (await call(client, "get_school_report"))["report"]
    assert report["period"] == {"since": _z(EDGE), "until": "2026-04-02T00:00:00.000Z"}
    assert report["previousPeriod"] == {"since": _z(EDGE - WEEK), "until": _z(EDGE)}
    assert report["students"] == {"newStudents": {"value": 2, "previous": 1, "changePercent": 100.0}}
    assert report["learning"] == {
        "enrollments": {"value": 1, "previous": 0, "changePercent": None},
        # s2's three at EDGE and Short's one, against s3's two at EDGE-1s.
        "lessonsCompleted": {"value": 4, "previous": 2, "changePercent": 100.0},
        "coursesCompleted": {"value": 1, "previous": 0, "changePercent": None},
        "certificates": {"value": 1, "previous": 0, "changePercent": None},
        # Learning days in the period: s2's (EDGE's day) and the newcomer's (NOW's); s3's the day before.
        "activeLearners": {"value": 2, "previous": 1, "changePercent": 100.0},
    }
    assert report["community"] == {
        "newThreads": {"value": 2, "previous": 1, "changePercent": 100.0},
        "newComments": {"value": 2, "previous": 0, "changePercent": None},
    }
    assert report["omitted"] == []


async def test_school_report_over_a_given_period(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        await _school(client, clock, tenant.owner_user_id)
        clock.now = NOW
        report = (await call(client, "get_school_report", since="2026-03-01", until="2026-03-03"))["report"]
        refused = await refuse(client, "get_school_report", since="2026-03-03", until="2026-03-01")
        day = (await call(client, "get_school_report", since="2026-03-02", until="2026-03-02"))["report"]
        later = (await call(client, "get_school_report", since="2026-04-08"))["report"]
        too_long = await refuse(client, "get_school_report", since="2025-03-01", until="2026-03-02")
        not_a_day = await refuse(client, "get_school_report", since=_z(NOW))
    assert report["period"] == {"since": "2026-03-01T00:00:00.000Z", "until": "2026-03-04T00:00:00.000Z"}
    assert report["previousPeriod"] == {
        "since": "2026-02-26T00:00:00.000Z",
        "until": "2026-03-01T00:00:00.000Z",
    }
    assert report["students"]["newStudents"] == {"value": 5, "previous": 0, "changePercent": None}
    learning = {name: change["value"] for name, change in report["learning"].items()}
    # s1's four lessons (March 3) and s4's two (March 2); learning days March 2 (s4) and 3 (s1).
    assert learning == {
        "enrollments": 5,
        "lessonsCompleted": 6,
        "coursesCompleted": 1,
        "certificates": 1,
        "activeLearners": 2,
    }
    assert refused["error"] == "unprocessable" and "since, until" in refused["message"]
    # One day, March 2: s4's two lessons, against March 1's none.
    assert day["period"] == {"since": "2026-03-02T00:00:00.000Z", "until": "2026-03-03T00:00:00.000Z"}
    assert day["learning"]["lessonsCompleted"] == {"value": 2, "previous": 0, "changePercent": None}
    assert later["period"] == {
        "since": "2026-04-08T00:00:00.000Z",
        "until": "2026-04-09T00:00:00.000Z",
    }  # until: since, if after today
    assert too_long["error"] == "unprocessable" and "at most 366 days" in too_long["message"]
    assert not_a_day["error"] == "bad_request" and "ISO 8601 date string" in not_a_day["message"]


async def test_school_report_answers_only_the_parts_the_key_may_read(store, tenant):
    assert "get_school_report" not in await _tool_names(store, tenant, ["courses:read", "webhooks:read"])
    key = await add_key(store, tenant, ["communities:read"])
    async with mcp_client(store, key) as client:
        assert "get_school_report" in {tool.name for tool in (await client.list_tools()).tools}
        report = (await call(client, "get_school_report"))["report"]
    assert report["students"] is None and report["learning"] is None
    assert report["community"] == {
        "newThreads": {"value": 0, "previous": 0, "changePercent": None},
        "newComments": {"value": 0, "previous": 0, "changePercent": None},
    }
    assert report["omitted"] == [
        {"part": "students", "reason": "This API key lacks the students:read permission"},
        {"part": "learning", "reason": "This API key lacks the enrollments:read permission"},
    ]
