"""An agent's everyday requests, replayed through the in-process MCP client, counting calls: each
takes at most the calls below, whatever the number of rows involved.

| request | calls |
|---|---|
| "Mark lesson 3 done for Ada" | 3 |
| "Who finished the React course?" | 2 |
| "Pin last week's discussion" | 2 |
| "Remove the spam comment and its replies" (in the community the bot moderates) | 2 |
| find a course by slug / a student by email | 1 |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mcp import Client
from sqlalchemy import update

from storage.tables import Thread
from tests.support.community_factories import new_comment, new_community, new_thread
from tests.support.factories import make_course, mcp_client, ok

VIDEO = "https://youtu.be/dQw4w9WgXcQ"


@dataclass
class Agent:
    """Calls tools and counts them: the replay's measure."""

    client: Client
    calls: list[str] = field(default_factory=list)

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        self.calls.append(tool)
        return ok(await self.client.call_tool(tool, arguments))


@dataclass(frozen=True)
class School:
    react_id: str
    ada_id: str
    community_id: str
    weekly_thread_id: str
    spam_id: str


async def _school(client: Client, store, owner_id: str) -> School:
    """Two courses, three students (Grace finished React), a community with an old and a recent
    discussion and a spam comment with two replies: set up without counting."""

    async def student(name: str, email: str) -> str:
        return ok(await client.call_tool("register_student", {"name": name, "email": email}))["student"]["id"]

    lessons = [{"title": f"Lesson {n}", "videoUrl": VIDEO} for n in range(1, 6)]
    react = await make_course(
        client,
        title="React Fundamentals",
        slug="react-fundamentals",
        sections=[
            {"title": "Basics", "lessons": lessons[:2]},
            {"title": "Hooks", "lessons": lessons[2:]},
        ],
    )
    python = await make_course(
        client,
        title="Python for Beginners",
        slug="python-for-beginners",
        sections=[{"title": "Start", "lessons": lessons[:1]}],
    )
    ada = await student("Ada Lovelace", "ada@example.com")
    grace = await student("Grace Hopper", "grace@example.com")
    linus = await student("Linus Torvalds", "linus@example.com")
    enrollments = {}
    for who, course in ((ada, react), (ada, python), (grace, react), (linus, react)):
        enrollment = ok(
            await client.call_tool("enroll_student", {"studentId": who, "courseId": course["id"]})
        )
        enrollments[who, course["id"]] = enrollment["enrollment"]["id"]
    for position in range(1, 6):
        ok(
            await client.call_tool(
                "update_progress",
                {
                    "enrollmentId": enrollments[grace, react["id"]],
                    "lessonPosition": position,
                    "completed": True,
                },
            )
        )

    community = await new_community(client, name="React Learners")
    old = await new_thread(
        client, community["id"], owner_id, title="Weekly discussion: hooks", content="What clicked?"
    )
    weekly = await new_thread(
        client, community["id"], owner_id, title="Weekly discussion: state", content="Redux?"
    )
    async with store.writing() as db:  # the old one was three weeks ago
        await db.session.execute(
            update(Thread)
            .where(Thread.id == old["id"])
            .values(created_at=datetime.now(UTC) - timedelta(days=21))
        )
    helpful = await new_thread(
        client, community["id"], owner_id, title="Project ideas", content="Share yours"
    )
    await new_comment(client, community["id"], helpful["id"], owner_id, content="A todo app")
    spam = await new_comment(
        client, community["id"], helpful["id"], owner_id, content="FREE crypto at scam.example"
    )
    reply = await new_comment(
        client, community["id"], helpful["id"], owner_id, parent_id=spam["id"], content="Spam!"
    )
    await new_comment(
        client, community["id"], helpful["id"], owner_id, parent_id=reply["id"], content="Reported"
    )
    return School(react["id"], ada, community["id"], weekly["id"], spam["id"])


@pytest.fixture
async def school(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        return await _school(client, store, tenant.owner_user_id)


async def test_mark_lesson_3_done_for_ada_takes_3_calls(store, tenant, school):
    async with mcp_client(store, tenant.key) as client:
        agent = Agent(client)
        [ada] = (await agent.call("list_students", search="Ada"))["data"]
        enrollments = (await agent.call("list_enrollments", studentId=ada["id"]))["data"]
        # Ada has two courses; the names in the result tell which is React, with no lookup.
        react = next(e for e in enrollments if e["courseTitle"] == "React Fundamentals")
        await agent.call("update_progress", enrollmentId=react["id"], lessonPosition=3, completed=True)
        check = ok(await client.call_tool("get_enrollment", {"enrollmentId": react["id"]}))
    assert len(agent.calls) == 3
    done = [
        (lesson["position"], lesson["title"])
        for lesson in check["enrollment"]["lessons"]
        if lesson["completed"]
    ]
    assert done == [(3, "Lesson 3")]


async def test_who_finished_the_react_course_takes_2_calls(store, tenant, school):
    async with mcp_client(store, tenant.key) as client:
        agent = Agent(client)
        [course] = (await agent.call("list_courses", search="react"))["data"]
        finished = (await agent.call("list_enrollments", courseId=course["id"], completed=True))["data"]
    assert len(agent.calls) == 2
    assert [e["studentName"] for e in finished] == ["Grace Hopper"]


async def test_pin_last_weeks_discussion_takes_2_calls(store, tenant, school):
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    async with mcp_client(store, tenant.key) as client:
        agent = Agent(client)
        # No communityId: every community of the school at once.
        [thread] = (await agent.call("list_threads", search="weekly discussion", since=week_ago))["data"]
        pinned = await agent.call(
            "update_thread", communityId=thread["communityId"], threadId=thread["id"], pinned=True
        )
    assert len(agent.calls) == 2
    assert thread["id"] == school.weekly_thread_id and pinned["thread"]["pinned"] is True


async def test_remove_the_spam_comment_and_its_replies_takes_2_calls(store, tenant, school):
    async with mcp_client(store, tenant.key) as client:
        agent = Agent(client)  # the community's moderator bot knows its community
        [spam] = (await agent.call("list_comments", communityId=school.community_id, search="crypto"))["data"]
        deleted = await agent.call(
            "delete_comment", communityId=school.community_id, threadId=spam["threadId"], commentId=spam["id"]
        )
    assert len(agent.calls) == 2
    assert deleted == {"deleted": True, "id": school.spam_id, "repliesDeleted": 2}


async def test_a_course_by_slug_and_a_student_by_email_take_1_call_each(store, tenant, school):
    async with mcp_client(store, tenant.key) as client:
        agent = Agent(client)
        [course] = (await agent.call("list_courses", search="react-fundamentals"))["data"]
        [student] = (await agent.call("list_students", search="ada@example.com"))["data"]
    assert len(agent.calls) == 2  # one each
    assert course["id"] == school.react_id and student["id"] == school.ada_id
