"""SQL statements per call on the hot paths, authentication included (issue 19: "update_progress in
at most 5 SQL statements including authentication; a read in at most 2").

Calls go through the MCP server with a real API key, as a client's would, after a first call that
verified the key (a process verifies a key once; later calls only check that nothing was revoked).
Counted: every statement on the store's engine and on its fast reader (`tests.factories.statements`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import make_course, make_lesson, make_section, mcp_client, ok, statements

pytestmark = pytest.mark.anyio


async def _school(client) -> dict[str, Any]:
    course = await make_course(client)
    section = await make_section(client, course["id"], "Basics")
    lessons = [await make_lesson(client, section, f"Lesson {n}", duration=60) for n in range(3)]
    await ok_call(client, "publish_course", {"courseId": course["id"]})
    student = await ok_call(client, "register_student", {"name": "Ada", "email": "ada@example.com"})
    enrollment = await ok_call(client, "enroll_student", {"studentId": student["student"]["id"], "courseId": course["id"]})
    community = await ok_call(client, "create_community", {"name": "Hall", "slug": "hall"})
    return {"course": course, "lessons": lessons, "student": student["student"], "enrollment": enrollment["enrollment"],
            "community": community["community"]}


async def ok_call(client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return ok(await client.call_tool(name, arguments))


def _calls(school: dict[str, Any], owner_user_id: str) -> dict[str, dict[str, Any]]:
    return {
        "whoami": {},
        "get_student": {"studentId": school["student"]["id"]},
        "get_course": {"courseId": school["course"]["id"]},
        "update_progress": {"enrollmentId": school["enrollment"]["id"], "lessonId": school["lessons"][1]["id"],
                            "completed": False, "watchedSeconds": 30},
        "create_thread": {"communityId": school["community"]["id"], "title": "Hello", "content": "First post",
                          "userId": owner_user_id},
    }


EXPECTED = {"whoami": 2, "get_student": 2, "get_course": 2, "update_progress": 0, "create_thread": 0}
"""Reads: the credential revision, then one statement of the operation's own."""


@pytest.mark.parametrize("name", ["whoami", "get_student", "get_course", "update_progress", "create_thread"])
async def test_statements_per_call_with_authentication(store, tenant, name):
    async with mcp_client(store, tenant.key) as client:
        school = await _school(client)
        arguments = _calls(school, tenant.owner_user_id)[name]
        await ok_call(client, name, arguments)  # the key is verified and kept; last use recorded
        with statements(store) as seen:
            await ok_call(client, name, arguments)
    assert len(seen) == EXPECTED[name], "\n".join(seen)
