"""The demo school (`server.demo_school`): enough of a school for a newcomer's first look to show
something: courses with curricula, three dozen students, a month of progress, certificates, and
communities with threads and replies; the same school on every run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from sqlalchemy import select
from sqlmodel import col

from server.demo import ensure_demo
from server.demo_school import DEMO_COURSES, DEMO_STUDENT_COUNT
from storage.engine import Store, open_store
from storage.migrate import upgrade
from storage.tables import Enrollment, LessonProgress
from tests.support.factories import mcp_client, ok


async def _school(store: Store, key: str) -> dict:
    """What an agent with the demo key reads of the school."""
    async with mcp_client(store, key) as client:

        async def call(name: str, **arguments) -> dict:
            return ok(await client.call_tool(name, arguments))

        courses = [
            (await call("get_course", courseId=course["id"]))["course"]
            for course in (await call("list_courses", limit=100))["data"]
        ]
        communities = [
            (await call("get_community", communityId=community["id"]))["community"]
            for community in (await call("list_communities", limit=100))["data"]
        ]
        threads = {
            community["name"]: (await call("list_threads", communityId=community["id"], limit=100))["data"]
            for community in communities
        }
        comments = {
            thread["title"]: (
                await call("list_comments", communityId=community["id"], threadId=thread["id"], limit=100)
            )["data"]
            for community in communities
            for thread in threads[community["name"]]
        }
        return {
            "courses": courses,
            "students": (await call("list_students", limit=100)),
            "enrollments": (await call("list_enrollments", limit=100)),
            "certificates": (await call("list_certificates", limit=100)),
            "communities": communities,
            "threads": threads,
            "comments": comments,
        }


async def _days_with_lessons_completed(store: Store, producer_id: str) -> set:
    async with store.sessions() as session:
        rows = await session.execute(
            select(col(LessonProgress.completed_at))
            .join(Enrollment, col(Enrollment.id) == col(LessonProgress.enrollment_id))
            .where(col(Enrollment.producer_id) == producer_id, col(LessonProgress.completed).is_(True))
        )
        days = set()
        for (completed_at,) in rows:
            assert completed_at is not None, "a completed lesson has its completion time"
            days.add(completed_at.astimezone(UTC).date())
        return days


async def test_the_demo_school_has_courses_students_a_month_of_progress_certificates_and_discussions(store):
    started = time.perf_counter()
    demo = await ensure_demo(store)
    # Argon2 runs at the tests' cheap cost here: this is the operations' own time. At production
    # cost, each student's password hash adds its own (see the README).
    print(f"\ndemo school made in {time.perf_counter() - started:.2f} s")
    school = await _school(store, demo.key)

    with_lessons = [
        course
        for course in school["courses"]
        if sum(len(section["lessons"]) for section in course["sections"]) >= 3
    ]
    assert (
        len(with_lessons) >= 3 and len([course for course in school["courses"] if course["published"]]) >= 3
    )
    lessons = [
        lesson
        for course in school["courses"]
        for section in course["sections"]
        for lesson in section["lessons"]
    ]
    assert {lesson["videoMeta"]["type"] for lesson in lessons} == {"youtube", "vimeo", "direct"}

    assert school["students"]["pagination"]["total"] == DEMO_STUDENT_COUNT >= 30
    enrollments = school["enrollments"]["data"]
    assert len(enrollments) >= DEMO_STUDENT_COUNT  # each student in one course or more
    assert (
        sum(enrollment["progress"]["completedLessons"] > 0 for enrollment in enrollments)
        >= len(enrollments) // 2
    )
    today = datetime.now(UTC).date()
    days = await _days_with_lessons_completed(store, demo.producer_id)
    assert len(days) >= 10 and all(today - timedelta(days=29) <= day <= today for day in days)
    assert school["certificates"]["pagination"]["total"] >= 1
    assert (
        sum(enrollment["completedAt"] is not None for enrollment in enrollments)
        == school["certificates"]["pagination"]["total"]
    )

    lounge = next(
        community for community in school["communities"] if community["name"] == "Demo Academy Lounge"
    )
    assert lounge["memberCount"] >= 13
    assert len(school["threads"]["Demo Academy Lounge"]) >= 3
    comments = [comment for thread in school["comments"].values() for comment in thread]
    assert len(comments) >= 10 and any(comment["parentId"] for comment in comments)


async def test_the_demo_school_is_the_same_on_every_run(store, databases):
    def summary(school: dict) -> dict:
        return {
            "courses": sorted(
                (
                    course["title"],
                    tuple(lesson["title"] for section in course["sections"] for lesson in section["lessons"]),
                )
                for course in school["courses"]
            ),
            "students": sorted(student["name"] for student in school["students"]["data"]),
            "progress": sorted(
                (
                    enrollment["studentName"],
                    enrollment["courseTitle"],
                    enrollment["progress"]["completedLessons"],
                )
                for enrollment in school["enrollments"]["data"]
            ),
            "threads": {
                name: sorted(thread["title"] for thread in threads)
                for name, threads in school["threads"].items()
            },
            "comments": {
                title: sorted(comment["content"] for comment in comments)
                for title, comments in school["comments"].items()
            },
        }

    first = summary(await _school(store, (await ensure_demo(store)).key))
    other_url = databases.new("demo-school-again")
    await anyio.to_thread.run_sync(upgrade, other_url)
    async with open_store(other_url) as other:
        second = summary(await _school(other, (await ensure_demo(other)).key))
    assert first == second
    assert [title for title, _ in first["courses"]] == sorted(course["title"] for course in DEMO_COURSES)


async def test_the_demo_counts_in_the_overview(store):
    """The dashboard's overview of the demo school: students, courses, certificates and a chart that moves."""
    from tools.core.context import Principal
    from tools.core.runner import run_operation
    from tools.domains.overview import SchoolOverviewResult
    from tools.registry import OPERATIONS_BY_NAME

    demo = await ensure_demo(store)
    owner = Principal(
        producer_id=demo.producer_id, key_id=None, key_name="owner session", grants=("*",), kind="session"
    )
    result = await run_operation(
        OPERATIONS_BY_NAME["get_school_overview"], {"days": 30}, store=store, principal=owner
    )
    assert isinstance(result, SchoolOverviewResult)
    overview = result.overview
    assert (
        overview.counts.students == DEMO_STUDENT_COUNT
        and overview.counts.published_courses == 3
        and overview.counts.draft_courses == 1
    )
    assert overview.counts.certificates >= 1 and overview.counts.communities == 2
    assert sum(day.lessons_completed > 0 for day in overview.activity) >= 10
    assert max(day.active_learners for day in overview.activity) >= 3
