"""The questions a school's owner asks first, put to a fresh demo school as an agent would: who is
falling behind, where learners drop off in a course, which posts still wait for an answer, how the
week went. Each is answered by one tool call, and each answer is checked against what the many
calls it replaces find (the pages of enrollments, every enrollment's lessons, every thread's
comments), the way an agent answered before these tools existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from server.demo import ensure_demo
from tests.support.factories import mcp_client, ok


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)  # Python 3.11 reads the trailing Z


def _flattened(comments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every comment of a tree of comments and their replies."""
    found = []
    for comment in comments:
        found.append(comment)
        found.extend(_flattened(comment.get("replies", [])))
    return found


async def _a_question_left_unanswered(store, key: str) -> str:
    """A student's question in the demo's first community, two days old, followed up only by its
    author (the demo's own threads all have answers): its title."""
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    async with mcp_client(store, key, clock=lambda: two_days_ago) as client:
        community = ok(await client.call_tool("list_communities", {"limit": 1}))["data"][0]
        members = ok(await client.call_tool("list_members", {"communityId": community["id"], "limit": 100}))[
            "data"
        ]
        author = next(member for member in members if member["role"] == "member")
        title = "Is anyone else stuck on generics?"
        thread = ok(
            await client.call_tool(
                "create_thread",
                {
                    "communityId": community["id"],
                    "userId": author["userId"],
                    "title": title,
                    "content": "Help?",
                },
            )
        )["thread"]
        await client.call_tool(
            "create_comment",
            {
                "communityId": community["id"],
                "threadId": thread["id"],
                "userId": author["userId"],
                "content": "Still stuck, any pointers?",
            },
        )
    return title


async def test_the_first_four_questions_are_each_answered_by_one_call(store):
    demo = await ensure_demo(store)
    unanswered = await _a_question_left_unanswered(store, demo.key)
    async with mcp_client(store, demo.key) as client:
        calls: list[str] = []

        async def call(name: str, **arguments: Any) -> dict[str, Any]:
            calls.append(name)
            return ok(await client.call_tool(name, arguments))

        # What the many calls find: the school as list and get operations show it.
        enrollments = await call("list_enrollments", limit=100)
        assert not enrollments["pagination"]["hasMore"], "the demo school fits one page of 100"
        enrollments = enrollments["data"]
        courses = (await call("list_courses", limit=100))["data"]
        communities = (await call("list_communities", limit=100))["data"]
        students = (await call("list_students", limit=100))["data"]
        now = datetime.now(UTC)

        # 1. Who is falling behind? Not finished, and no lesson progress for 14 UTC days or more.
        calls.clear()
        behind = await call("find_students_needing_attention", limit=100)
        assert calls == ["find_students_needing_attention"]
        expected_behind = {
            (enrollment["studentName"], enrollment["courseTitle"])
            for enrollment in enrollments
            if enrollment["progress"]["percent"] < 100
            and (now.date() - _at(enrollment["updatedAt"]).date()).days >= 14  # whole UTC days
        }
        assert expected_behind, "the demo school has learners who stopped weeks ago"
        assert {(row["studentName"], row["courseTitle"]) for row in behind["data"]} == expected_behind

        # 2. Where do learners drop off in a course? The course with the most enrollments.
        by_course: dict[str, list[dict[str, Any]]] = {}
        for enrollment in enrollments:
            by_course.setdefault(enrollment["courseId"], []).append(enrollment)
        course_id = max(by_course, key=lambda course: len(by_course[course]))
        completed_per_lesson: dict[str, int] = {}
        for enrollment in by_course[course_id]:
            detail = await call("get_enrollment", enrollmentId=enrollment["id"])
            for lesson in detail["enrollment"]["lessons"]:
                completed_per_lesson.setdefault(lesson["title"], 0)
                completed_per_lesson[lesson["title"]] += lesson["completed"]
        calls.clear()
        insights = (await call("get_course_insights", courseId=course_id))["insights"]
        assert calls == ["get_course_insights"]
        course_title = next(course["title"] for course in courses if course["id"] == course_id)
        assert insights["courseTitle"] == course_title
        assert insights["enrollments"] == len(by_course[course_id])
        funnel = {step["lessonTitle"]: step["completed"] for step in insights["funnel"]}
        assert funnel == completed_per_lesson
        drops = [
            (earlier["completed"] - later["completed"], later["lessonTitle"])
            for earlier, later in pairwise(insights["funnel"])
        ]
        most_lost = max(lost for lost, _ in drops)
        assert most_lost > 0, "learners drop off somewhere in the demo's busiest course"
        assert insights["largestDrop"]["lessonTitle"] == next(
            title for lost, title in drops if lost == most_lost
        )

        # 3. Which posts are still waiting for an answer? No comment but their author's after 24 hours.
        expected_waiting: set[str] = set()
        for community in communities:
            threads = (await call("list_threads", communityId=community["id"], limit=100))["data"]
            for thread in threads:
                comments = (
                    await call("list_comments", communityId=community["id"], threadId=thread["id"], limit=100)
                )["data"]
                answered = any(
                    comment["author"]["id"] != thread["author"]["id"] for comment in _flattened(comments)
                )
                if not answered and _at(thread["createdAt"]) <= now - timedelta(hours=24):
                    expected_waiting.add(thread["title"])
        calls.clear()
        waiting = {
            thread["title"]
            for community in communities
            for thread in (await call("get_community_insights", communityId=community["id"]))["insights"][
                "waiting"
            ]
        }
        assert calls == ["get_community_insights"] * len(communities)  # one call per community asked about
        assert unanswered in expected_waiting
        assert waiting == expected_waiting

        # 4. How did this week go? New students and enrollments in the report's period, against the lists.
        calls.clear()
        report = (await call("get_school_report"))["report"]
        assert calls == ["get_school_report"]
        since, until = _at(report["period"]["since"]), _at(report["period"]["until"])
        # The 7 whole UTC days ending today: from midnight six days ago to tonight's midnight.
        assert until - since == timedelta(days=7) and since.date() == now.date() - timedelta(days=6)
        assert report["students"]["newStudents"]["value"] == sum(
            since <= _at(student["createdAt"]) < until for student in students
        )
        assert report["learning"]["enrollments"]["value"] == sum(
            since <= _at(enrollment["enrolledAt"]) < until for enrollment in enrollments
        )
        assert report["learning"]["lessonsCompleted"]["value"] > 0, (
            "the demo's last week has lessons completed"
        )
