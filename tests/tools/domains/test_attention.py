"""find_students_needing_attention: stalled enrollments, longest silence first, with what comes next."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from tests.support.clock import MONDAY_MORNING, Clock
from tests.support.community_factories import call, new_student, refuse
from tests.support.enrollment_factories import enroll, new_course, progress
from tests.support.factories import add_key, mcp_client
from tests.support.rest import rest_client
from tools.core.models import format_utc

TOOL = "find_students_needing_attention"
DAY_2 = datetime.combine(MONDAY_MORNING.date() + timedelta(days=2), time.min, tzinfo=UTC)
"""Midnight starting day 2: with the default 14 days, the first instant that is not silent long enough."""


async def _school(client, clock: Clock) -> dict:
    """Seen on day 15 (MONDAY_MORNING + 15 days), with the default 14 silent days; silence counts
    UTC days, from the day of the last activity to today:

    - Ada finished lesson 1 of course A on day 0 (silent 15 days), and learned in course B on
      days 13 and 14 (a current streak of 2, and course B is not stalled);
    - Nina enrolled at 16:00 on day 0 and never started (silent 15 days);
    - Eve finished lessons 1 and 3 in the last second of day 1 (silent exactly 14 days: counted);
    - Tom finished lesson 1 at midnight starting day 2 (silent 13 days: not stalled);
    - Dora finished the course on day 0 (100%: not stalled by default).
    """
    course_a, lessons = await new_course(client, 3)
    course_b, lessons_b = await new_course(client, 2)
    ada, nina, eve, tom, dora = [
        await new_student(client, name) for name in ("Ada", "Nina", "Eve", "Tom", "Dora")
    ]
    ada_a = await enroll(client, ada, course_a)
    ada_b = await enroll(client, ada, course_b)
    await progress(client, ada_a["id"], lessons[0])
    dora_a = await enroll(client, dora, course_a)
    for lesson in lessons:
        await progress(client, dora_a["id"], lesson)
    clock.advance(hours=6)
    nina_a = await enroll(client, nina, course_a)
    clock.now = DAY_2 - timedelta(seconds=1)
    eve_a = await enroll(client, eve, course_a)
    await progress(client, eve_a["id"], lessons[0])
    await progress(client, eve_a["id"], lessons[2])
    clock.now = DAY_2
    tom_a = await enroll(client, tom, course_a)
    await progress(client, tom_a["id"], lessons[0])
    clock.now = MONDAY_MORNING + timedelta(days=13)
    await progress(client, ada_b["id"], lessons_b[0])
    clock.now = MONDAY_MORNING + timedelta(days=14)
    await progress(client, ada_b["id"], lessons_b[1], completed=False, watchedSeconds=30)
    clock.now = MONDAY_MORNING + timedelta(days=15)
    return {
        "course_a": course_a,
        "course_b": course_b,
        "lessons": lessons,
        "students": {"ada": ada, "nina": nina, "eve": eve},
        "enrollments": {"ada": ada_a["id"], "nina": nina_a["id"], "eve": eve_a["id"]},
    }


def _names(answer: dict) -> list[str]:
    return [row["studentName"] for row in answer["data"]]


async def test_the_stalled_enrollments_come_longest_silence_first_with_what_comes_next(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        school = await _school(client, clock)
        answer = await call(client, TOOL)
    lessons, course_a = school["lessons"], school["course_a"]
    assert answer["silentSince"] == format_utc(DAY_2)
    assert answer["pagination"] == {"page": 1, "limit": 20, "total": 3, "totalPages": 1, "hasMore": False}
    ada, nina, eve = answer["data"]
    assert ada == {
        "enrollmentId": school["enrollments"]["ada"],
        "studentId": school["students"]["ada"],
        "studentName": "Ada",
        "courseId": course_a,
        "courseTitle": ada["courseTitle"],
        "enrolledAt": format_utc(MONDAY_MORNING),
        "progressPercent": 33,
        "completedLessons": 1,
        "totalLessons": 3,
        "lastActivityAt": format_utc(MONDAY_MORNING),
        "daysSilent": 15,
        "currentStreak": 2,  # days 13 and 14, in course B, seen on day 15
        "nextLesson": {"id": lessons[1], "title": "Lesson 2"},
    }
    assert (nina["studentName"], nina["lastActivityAt"], nina["daysSilent"]) == ("Nina", None, 15)
    assert (nina["progressPercent"], nina["currentStreak"], nina["nextLesson"]["id"]) == (0, 0, lessons[0])
    assert nina["enrolledAt"] == format_utc(MONDAY_MORNING + timedelta(hours=6))
    assert eve["lastActivityAt"] == format_utc(DAY_2 - timedelta(seconds=1))
    assert (eve["daysSilent"], eve["progressPercent"], eve["currentStreak"]) == (14, 67, 0)
    assert eve["nextLesson"] == {"id": lessons[1], "title": "Lesson 2"}  # lesson 3 is done: the gap is next


async def test_max_progress_is_the_rounded_percent_strictly_below_it(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        await _school(client, clock)
        below = {cap: _names(await call(client, TOOL, maxProgress=cap)) for cap in (1, 33, 34, 67, 68)}
    assert below == {
        1: ["Nina"],
        33: ["Nina"],
        34: ["Ada", "Nina"],
        67: ["Ada", "Nina"],
        68: ["Ada", "Nina", "Eve"],
    }


async def test_inactive_days_never_started_and_course_narrow_the_list(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        school = await _school(client, clock)
        thirteen = _names(await call(client, TOOL, inactiveDays=13))
        fifteen = _names(await call(client, TOOL, inactiveDays=15))
        never = _names(await call(client, TOOL, neverStarted=True))
        course_b = await call(client, TOOL, courseId=school["course_b"])
        one_day = _names(await call(client, TOOL, inactiveDays=1, courseId=school["course_b"]))
        course_a = _names(await call(client, TOOL, courseId=school["course_a"]))
    assert thirteen == ["Ada", "Nina", "Eve", "Tom"]
    assert fifteen == ["Ada", "Nina"]  # both last active on day 0; Eve on day 1
    assert never == ["Nina"]
    assert course_b["data"] == []
    assert one_day == ["Ada"]  # course B, silent since day 14: exactly one day
    assert course_a == ["Ada", "Nina", "Eve"]


async def test_pages_follow_the_order_and_count_them_all(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        await _school(client, clock)
        first = await call(client, TOOL, limit=2)
        second = await call(client, TOOL, limit=2, page=2)
    assert _names(first) + _names(second) == ["Ada", "Nina", "Eve"]
    assert first["pagination"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2, "hasMore": True}
    assert second["pagination"]["hasMore"] is False


async def test_another_producers_course_is_not_found_and_bad_bounds_name_the_field(
    store, tenant, tenant_factory
):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        theirs, _ = await new_course(client, 1)
    async with mcp_client(store, tenant.key) as client:
        refused = await refuse(client, TOOL, courseId=theirs)
        too_many = await refuse(client, TOOL, inactiveDays=3651)
        zero = await refuse(client, TOOL, maxProgress=0)
    assert refused["error"] == "not_found" and refused["message"].startswith("Course not found")
    assert too_many["error"] == "bad_request" and "inactiveDays" in too_many["message"]
    assert "maxProgress" in zero["message"]


async def test_a_key_without_enrollments_read_does_not_see_it(store, tenant):
    key = await add_key(store, tenant, ["courses:read"])
    async with mcp_client(store, key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert TOOL not in names


async def test_rest_serves_it_at_enrollments_attention(store, tenant, app):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        course, lessons = await new_course(client, 2)
        enrollment = await enroll(client, await new_student(client, "Ada"), course)
        await progress(client, enrollment["id"], lessons[0])
    async with rest_client(app, tenant.key) as http:
        response = await http.get("/enrollments/attention?inactiveDays=1")
    assert response.status_code == 200, response.text
    assert [row["enrollmentId"] for row in response.json()["data"]] == [enrollment["id"]]
