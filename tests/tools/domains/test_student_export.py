"""export_student: a student with enrollments, progress, a certificate, achievements, memberships,
threads, comments, replies, media, events and audit entries, all made through the tools; the export
holds each of them (ids and values checked against what was made) and nothing of another student;
REST and MCP answer the same document; another school's student is not found; a key without
students:read does not see the tool; each export, and a refused one, is in the audit log; a part with more rows than the limit is cut and named."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from storage.student_export import EXPORT_LIMIT
from tests.support.clock import Clock
from tests.support.community_factories import (
    MEDIA,
    call,
    insert_comments,
    new_comment,
    new_community,
    new_student,
    new_thread,
    refuse,
)
from tests.support.enrollment_factories import enroll, new_course, progress
from tests.support.factories import add_key, apart_from_exports, mcp_client
from tests.support.rest import http_app, rest_client


async def _student_with_everything(client, clock: Clock) -> dict[str, Any]:
    """Ada: two courses (the first completed: a certificate and two achievements; one lesson of the
    second watched 42 s), a membership, a thread, a comment on Ben's thread and a reply to Ben's
    comment, a video. Ben, another student, has his own enrollment, thread and comment."""
    ada = await new_student(client, "Ada Lovelace")
    ben = await new_student(client, "Ben Other")
    done_course, done_lessons = await new_course(client, 2, title="Done Course")
    open_course, open_lessons = await new_course(client, 3, title="Open Course")
    done = await enroll(client, ada, done_course)
    clock.advance(minutes=1)
    opened = await enroll(client, ada, open_course)
    await enroll(client, ben, open_course)
    for lesson in done_lessons:
        finished = await progress(client, done["id"], lesson)
    certificate = finished["events"]["certificateIssued"]
    await progress(client, opened["id"], open_lessons[1], completed=False, watchedSeconds=42)
    community = await new_community(client, name="Study Hall")
    member = (await call(client, "add_member", communityId=community["id"], userId=ada))["member"]
    await call(client, "add_member", communityId=community["id"], userId=ben)
    thread = await new_thread(client, community["id"], ada, title="Ada's question", content="How?")
    bens_thread = await new_thread(client, community["id"], ben, title="Ben's thread")
    bens_comment = await new_comment(client, community["id"], bens_thread["id"], ben, content="Ben says")
    comment = await new_comment(client, community["id"], bens_thread["id"], ada, content="Ada answers")
    clock.advance(seconds=1)  # the reply comes after the comment, not only by its random id
    reply = await new_comment(
        client, community["id"], bens_thread["id"], ada, parent_id=bens_comment["id"], content="Ada replies"
    )
    media = (await call(client, "add_media", communityId=community["id"], userId=ada, **MEDIA))["media"]
    return {
        "ada": ada,
        "ben": ben,
        "courses": (done_course, open_course),
        "lessons": (done_lessons, open_lessons),
        "enrollments": (done, opened),
        "certificate": certificate,
        "community": community,
        "member": member,
        "thread": thread,
        "bens": (bens_thread, bens_comment),
        "comment": comment,
        "reply": reply,
        "media": media,
    }


async def test_the_export_holds_every_item_of_the_student_and_nothing_of_another(store, tenant):
    clock = Clock.at_present()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        made = await _student_with_everything(client, clock)
        document = await call(client, "export_student", studentId=made["ada"])
    ada, ben = made["ada"], made["ben"]
    done, opened = made["enrollments"]

    assert document["student"]["id"] == ada and document["student"]["name"] == "Ada Lovelace"
    assert document["truncated"] == []
    assert [e["id"] for e in document["enrollments"]] == [done["id"], opened["id"]]
    first, second = document["enrollments"]
    assert first["courseTitle"] == "Done Course" and first["completedAt"] is not None
    assert first["completedLessons"] == 2
    assert [(x["lessonId"], x["completed"]) for x in first["lessons"]] == [
        (lesson, True) for lesson in made["lessons"][0]
    ]
    assert all(x["completedAt"] is not None for x in first["lessons"])
    assert second["completedAt"] is None and second["completedLessons"] == 0
    assert second["lessons"] == [
        {
            "lessonId": made["lessons"][1][1],
            "title": "Lesson 2",
            "completed": False,
            "watchedSeconds": 42,
            "completedAt": None,
        }
    ]
    certificate = made["certificate"]
    assert document["certificates"] == [
        {
            "id": certificate["id"],
            "enrollmentId": done["id"],
            "courseId": made["courses"][0],
            "courseTitle": "Done Course",
            "verificationCode": certificate["verificationCode"],
            "issuedAt": certificate["issuedAt"],
        }
    ]
    assert {a["code"] for a in document["achievements"]} == {"first_lesson", "first_course"}
    assert len(document["learningDays"]) == 1
    assert document["streak"] == {"current": 1, "longest": 1}
    assert [(m["id"], m["communityName"], m["role"]) for m in document["memberships"]] == [
        (made["member"]["id"], "Study Hall", "member")
    ]
    assert [(t["id"], t["title"], t["content"]) for t in document["threads"]] == [
        (made["thread"]["id"], "Ada's question", "How?")
    ]
    bens_thread, bens_comment = made["bens"]
    assert [(c["id"], c["threadId"], c["parentId"], c["content"]) for c in document["comments"]] == [
        (made["comment"]["id"], bens_thread["id"], None, "Ada answers"),
        (made["reply"]["id"], bens_thread["id"], bens_comment["id"], "Ada replies"),
    ]
    assert [(m["id"], m["url"], m["fileSize"]) for m in document["media"]] == [
        (made["media"]["id"], MEDIA["url"], MEDIA["fileSize"])
    ]

    # The feed: every event that names Ada (newest first), none that names only Ben.
    event_types = [event["type"] for event in document["events"]]
    assert set(event_types) == {
        "student.registered",
        "enrollment.created",
        "lesson.completed",
        "course.completed",
        "certificate.issued",
        "achievement.unlocked",
        "member.added",
        "thread.created",
        "comment.created",
        "media.added",
    }
    assert event_types.count("enrollment.created") == 2 and event_types.count("comment.created") == 2
    sequences = [event["sequence"] for event in document["events"]]
    assert sequences == sorted(sequences, reverse=True)
    assert all(ada in str(event["data"]) for event in document["events"])
    assert not any(event["data"].get("id") == bens_comment["id"] for event in document["events"])
    # The audit log: each write that named Ada's id (newest first).
    operations = [entry["operation"] for entry in document["auditEntries"]]
    assert sorted(set(operations)) == [
        "add_media",
        "add_member",
        "create_comment",
        "create_thread",
        "enroll_student",
        "register_student",
    ]
    assert operations.count("enroll_student") == 2 and operations.count("create_comment") == 2
    assert all(ada in entry["targetIds"].values() for entry in document["auditEntries"])
    assert ben not in str(document)  # Ben's events and entries, and his id, are not Ada's


async def test_rest_and_mcp_answer_the_same_document(store, tenant):
    clock = Clock.at_present()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        made = await _student_with_everything(client, clock)
        over_mcp = await call(client, "export_student", studentId=made["ada"])
    async with rest_client(http_app(store, clock=clock), tenant.key) as http:
        response = await http.get(f"/students/{made['ada']}/export")
    assert response.status_code == 200
    document, exports = apart_from_exports(response.json())
    assert len(exports) == 1, "the export over MCP, audited before REST's"
    assert document == over_mcp


async def test_another_schools_student_is_not_found(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        theirs = await new_student(client, "Their Student")
    async with mcp_client(store, tenant.key) as client:
        refused = await refuse(client, "export_student", studentId=theirs)
        missing = await refuse(client, "export_student", studentId="user_nothing")
    assert refused == missing == {"error": "not_found", "message": "Student not found"}
    async with rest_client(http_app(store), tenant.key) as http:
        response = await http.get(f"/students/{theirs}/export")
    assert response.status_code == 404 and "Their Student" not in response.text


async def test_an_export_is_audited_with_who_exported_whom_and_no_personal_data(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ada = await new_student(client, "Ada Lovelace")
        await call(client, "export_student", studentId=ada)
        await refuse(client, "export_student", studentId="user_nothing")
        again = await call(client, "export_student", studentId=ada)
        log = (await call(client, "list_audit_events", operation="export_student"))["data"]
    assert [(entry["outcome"], entry["targetIds"]) for entry in reversed(log)] == [
        ("ok", {"studentId": ada}),
        ("not_found", {"studentId": "user_nothing"}),
        ("ok", {"studentId": ada}),
    ]
    assert all(entry["keyId"] == tenant.key_id for entry in log)
    assert "Ada" not in str(log) and "Lovelace" not in str(log)
    # A later export shows the earlier one: the student learns who exported their data.
    assert [entry["operation"] for entry in again["auditEntries"]].count("export_student") == 1


async def test_a_key_without_students_read_does_not_see_the_tool(store, tenant):
    key = await add_key(store, tenant, ["courses:read", "enrollments:read", "audit:read", "events:read"])
    async with mcp_client(store, tenant.key) as client:
        ada = await new_student(client, "Ada")
    async with mcp_client(store, key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        with pytest.raises(MCPError, match="Unknown tool: export_student"):
            await client.call_tool("export_student", {"studentId": ada})
    assert "export_student" not in names
    async with rest_client(http_app(store), key) as http:
        response = await http.get(f"/students/{ada}/export")
    assert response.status_code == 403 and "Ada" not in response.text
    async with mcp_client(store, tenant.key) as client:
        assert "export_student" in {tool.name for tool in (await client.list_tools()).tools}


async def test_a_part_with_more_rows_than_the_limit_is_cut_and_named(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ada = await new_student(client, "Ada")
        community = await new_community(client)
        await call(client, "add_member", communityId=community["id"], userId=ada)
        thread = await new_thread(client, community["id"], ada)
        comment_ids = await insert_comments(
            store, thread_id=thread["id"], author_id=ada, parents=[None] * (EXPORT_LIMIT + 1)
        )
        document = await call(client, "export_student", studentId=ada)
    assert document["truncated"] == ["comments"]
    assert [c["id"] for c in document["comments"]] == comment_ids[:EXPORT_LIMIT]  # the oldest
    assert len(document["threads"]) == len(document["memberships"]) == 1
