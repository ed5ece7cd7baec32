"""Enrollments and progress: completing a course, validation, concurrency, deletes, tenancy and access."""

from __future__ import annotations

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from server.mcp_app import Runtime
from server.rest import rest_routes
from tests.support.community_factories import call, new_student, refuse
from tests.support.enrollment_factories import (
    codes,
    enroll,
    new_course,
    new_learner,
    overlap_is_as_the_engine_allows,
    peak_write_sessions,
    progress,
    table_counts,
)
from tests.support.factories import (
    error,
    hints_of,
    make_course,
    make_lesson,
    make_section,
    mcp_client,
    principal_of,
    text_of,
)
from tools.core.runner import run_operation
from tools.domains.enrollments import percent
from tools.registry import OPERATIONS_BY_NAME

READ_TOOLS = {"list_enrollments", "get_enrollment", "list_certificates", "list_achievements"}
WRITE_TOOLS = {"enroll_student", "enroll_students", "update_progress", "delete_enrollment"}
NOTHING = {"enrollments": 0, "lesson_progress": 0, "certificates": 0, "learning_days": 0, "achievements": 0}


# ---- acceptance 1: completing a three-lesson course


async def test_completing_a_three_lesson_course_one_by_one(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client, lessons=3)
        steps = [await progress(client, learner.enrollment_id, lesson) for lesson in learner.lesson_ids]
        again = await progress(client, learner.enrollment_id, learner.lesson_ids[-1])
        certificates = await call(client, "list_certificates", studentId=learner.student_id)
        achievements = await call(client, "list_achievements", studentId=learner.student_id)
        fetched = (await call(client, "get_enrollment", enrollmentId=learner.enrollment_id))["enrollment"]

    assert [step["enrollment"]["progress"]["percent"] for step in steps] == [33, 67, 100]
    assert [codes(step) for step in steps] == [["first_lesson"], [], ["first_course"]]
    issued = [step["events"]["certificateIssued"] for step in steps]
    assert issued[:2] == [None, None] and issued[2] is not None
    assert again["events"] == {"newAchievements": [], "certificateIssued": None}
    assert again["enrollment"] == steps[2]["enrollment"]
    assert certificates["data"] == [issued[2]]
    assert issued[2]["studentId"] == learner.student_id and issued[2]["courseId"] == learner.course_id
    assert sorted(a["code"] for a in achievements["data"]) == ["first_course", "first_lesson"]
    assert fetched["progress"] == {"completedLessons": 3, "totalLessons": 3, "percent": 100}
    assert fetched["completedAt"] == steps[2]["enrollment"]["completedAt"] == issued[2]["issuedAt"]
    assert await table_counts(store) == {**NOTHING, "enrollments": 1, "lesson_progress": 3} | {
        "certificates": 1,
        "learning_days": 1,
        "achievements": 2,
    }


async def test_enroll_student_returns_the_enrollment_at_zero_percent(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student_id = await new_student(client)
        course_id, _ = await new_course(client, lessons=2, title="Python 101", slug="python-101")
        enrollment = await enroll(client, student_id, course_id)
    assert set(enrollment) == {
        "id",
        "studentId",
        "studentName",
        "courseId",
        "courseTitle",
        "courseSlug",
        "enrolledAt",
        "completedAt",
        "updatedAt",
        "progress",
    }
    assert (enrollment["studentId"], enrollment["courseId"], enrollment["completedAt"]) == (
        student_id,
        course_id,
        None,
    )
    assert (enrollment["studentName"], enrollment["courseTitle"], enrollment["courseSlug"]) == (
        "Jane Smith",
        "Python 101",
        "python-101",
    )
    assert enrollment["updatedAt"] == enrollment["enrolledAt"]
    assert enrollment["progress"] == {"completedLessons": 0, "totalLessons": 2, "percent": 0}


async def test_enrolling_the_same_pair_twice_is_conflict(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client)
        failure = await refuse(
            client, "enroll_student", studentId=learner.student_id, courseId=learner.course_id
        )
    assert failure["error"] == "conflict"
    assert (await table_counts(store))["enrollments"] == 1


def test_percent_rounds_and_reaches_100_only_when_all_are_done():
    assert [percent(n, 3) for n in range(4)] == [0, 33, 67, 100]
    assert percent(0, 0) == 0
    assert percent(199, 200) == 99
    assert percent(1, 200) == 1


async def test_progress_is_monotonic_and_repeating_an_update_changes_nothing(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client, lessons=2)
        lesson = learner.lesson_ids[0]
        await progress(client, learner.enrollment_id, lesson, completed=False, watchedSeconds=120)
        done = await progress(client, learner.enrollment_id, lesson, watchedSeconds=60)
        undone = await progress(client, learner.enrollment_id, lesson, completed=False)
        fetched = (await call(client, "get_enrollment", enrollmentId=learner.enrollment_id))["enrollment"]
    first = fetched["lessons"][0]
    assert (first["completed"], first["watchedSeconds"]) == (True, 120)
    assert first["completedAt"] is not None
    assert undone["enrollment"] == done["enrollment"]
    assert fetched["progress"]["percent"] == 50


async def test_get_enrollment_lists_every_lesson_in_curriculum_order(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client, lessons=0)
        first = await make_section(client, course_id, "First")
        second = await make_section(client, course_id, "Second")
        lessons = [
            await make_lesson(client, section, title) for section, title in [(second, "B1"), (first, "A1")]
        ]
        await make_lesson(client, second, "B0", order=0)
        await call(client, "update_section", courseId=course_id, sectionId=second["id"], order=0)
        enrollment = await enroll(client, await new_student(client), course_id)
        await progress(client, enrollment["id"], lessons[0]["id"], watchedSeconds=30)
        fetched = (await call(client, "get_enrollment", enrollmentId=enrollment["id"]))["enrollment"]
        titles = {
            lesson["id"]: lesson["title"]
            for section in (await call(client, "get_course", courseId=course_id))["course"]["sections"]
            for lesson in section["lessons"]
        }
    assert [titles[lesson["lessonId"]] for lesson in fetched["lessons"]] == ["B0", "B1", "A1"]
    where = [(lesson["title"], lesson["sectionTitle"], lesson["position"]) for lesson in fetched["lessons"]]
    assert where == [("B0", "Second", 1), ("B1", "Second", 2), ("A1", "First", 3)]
    assert fetched["lessons"][1] == {
        "lessonId": lessons[0]["id"],
        "title": "B1",
        "sectionId": second["id"],
        "sectionTitle": "Second",
        "position": 2,
        "completed": True,
        "watchedSeconds": 30,
        "completedAt": fetched["lessons"][1]["completedAt"],
    }
    untouched = fetched["lessons"][0]
    assert (untouched["completed"], untouched["watchedSeconds"], untouched["completedAt"]) == (False, 0, None)
    assert fetched["progress"] == {"completedLessons": 1, "totalLessons": 3, "percent": 33}
    assert fetched["streak"] == {"current": 1, "longest": 1}


async def test_list_enrollments_filters_by_student_and_course_newest_first(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ann, bob = await new_student(client, "Ann"), await new_student(client, "Bob")
        (python, _), (rust, rust_lessons) = await new_course(client), await new_course(client)
        ids = {
            pair: (await enroll(client, *pair))["id"] for pair in [(ann, python), (ann, rust), (bob, python)]
        }
        await progress(client, ids[(ann, rust)], rust_lessons[0])
        by_ann = await call(client, "list_enrollments", studentId=ann)
        by_python = await call(client, "list_enrollments", courseId=python)
        both = await call(client, "list_enrollments", studentId=bob, courseId=python)
        page = await call(client, "list_enrollments", page=2, limit=2)
    assert [e["id"] for e in by_ann["data"]] == [ids[(ann, rust)], ids[(ann, python)]]
    assert [e["progress"]["percent"] for e in by_ann["data"]] == [33, 0]
    assert [e["id"] for e in by_python["data"]] == [ids[(bob, python)], ids[(ann, python)]]
    assert [e["id"] for e in both["data"]] == [ids[(bob, python)]]
    assert [e["id"] for e in page["data"]] == [ids[(ann, python)]]
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 3, "totalPages": 2, "hasMore": False}


async def _statement_count(store, tenant, tool: str, arguments: dict) -> int:
    with store.statements_seen() as seen:
        await run_operation(OPERATIONS_BY_NAME[tool], arguments, store=store, principal=principal_of(tenant))
    return len(seen)


async def test_reads_cost_the_same_statements_for_small_and_large_enrollments(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        small = await new_learner(client, lessons=1)
        large = await new_learner(client, lessons=40)
        for lesson in large.lesson_ids[:20]:
            await progress(client, large.enrollment_id, lesson)
        for _ in range(9):
            await new_learner(client, lessons=2, student_id=small.student_id)
    get = [
        await _statement_count(store, tenant, "get_enrollment", {"enrollmentId": learner.enrollment_id})
        for learner in (small, large)
    ]
    listed = [
        await _statement_count(store, tenant, "list_enrollments", {"studentId": small.student_id, "limit": n})
        for n in (1, 10)
    ]
    # The enrollment with its names, its lessons with their sections and progress, the learning days.
    assert get[0] == get[1] == 3
    # The student, the page, its count, the page's names and lesson counts.
    assert listed[0] == listed[1] == 4


# ---- acceptance 3: concurrency


async def _concurrently(count: int, call_one) -> None:
    async with anyio.create_task_group() as group:
        for n in range(count):
            group.start_soon(call_one, n)


async def test_50_concurrent_enrollments_of_one_pair_exactly_one_succeeds(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student_id = await new_student(client)
        course_id, _ = await new_course(client)
        results = []

        async def enroll_once(_: int) -> None:
            results.append(
                await client.call_tool("enroll_student", {"studentId": student_id, "courseId": course_id})
            )

        async with peak_write_sessions(store) as peak:
            await _concurrently(50, enroll_once)
    errors = [text_of(result) for result in results if result.is_error]
    assert overlap_is_as_the_engine_allows(peak())
    assert len(results) - len(errors) == 1
    assert len(errors) == 49 and all('"error":"conflict"' in text for text in errors)
    assert (await table_counts(store))["enrollments"] == 1


async def test_50_concurrent_progress_updates_give_the_right_percent_and_one_certificate(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client, lessons=25)
        results = []

        async def complete_one(n: int) -> None:  # every lesson twice
            lesson = learner.lesson_ids[n % 25]
            results.append(await progress(client, learner.enrollment_id, lesson, watchedSeconds=n))

        async with peak_write_sessions(store) as peak:
            await _concurrently(50, complete_one)
        final = (await call(client, "get_enrollment", enrollmentId=learner.enrollment_id))["enrollment"]
    assert overlap_is_as_the_engine_allows(peak())
    assert final["progress"] == {"completedLessons": 25, "totalLessons": 25, "percent": 100}
    assert [lesson["watchedSeconds"] for lesson in final["lessons"]] == [n + 25 for n in range(25)]
    assert sum(r["events"]["certificateIssued"] is not None for r in results) == 1
    assert sorted(code for r in results for code in codes(r)) == ["first_course", "first_lesson"]
    counts = await table_counts(store)
    assert (counts["certificates"], counts["achievements"], counts["lesson_progress"]) == (1, 2, 25)


# ---- acceptance 4: validation writes nothing


async def test_a_lesson_of_another_course_is_not_found_and_writes_nothing(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client)
        _, other_lessons = await new_course(client)
        before = await table_counts(store)
        failure = await refuse(
            client,
            "update_progress",
            enrollmentId=learner.enrollment_id,
            lessonId=other_lessons[0],
            completed=True,
        )
    assert failure == {
        "error": "not_found",
        "message": f"Lesson not found in course {learner.course_id}; see get_course for its lessons",
    }
    assert await table_counts(store) == before


INVALID_PROGRESS = {
    "watchedSeconds negative": ({"watchedSeconds": -1}, "watchedSeconds"),
    "watchedSeconds fractional": ({"watchedSeconds": 1.5}, "watchedSeconds"),
    "watchedSeconds as string": ({"watchedSeconds": "10"}, "watchedSeconds"),
    "completed missing": ({"completed": None}, "completed"),
    "completed as string": ({"completed": "true"}, "completed"),
    "lessonId missing": ({"lessonId": None}, "lessonId"),
    "unknown field": ({"score": 5}, "score"),
}


@pytest.mark.parametrize(("fields", "path"), INVALID_PROGRESS.values(), ids=INVALID_PROGRESS.keys())
async def test_update_progress_refuses_invalid_input_and_writes_nothing(store, tenant, fields, path):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client)
        arguments = {
            "enrollmentId": learner.enrollment_id,
            "lessonId": learner.lesson_ids[0],
            "completed": True,
        }
        arguments = {k: v for k, v in (arguments | fields).items() if v is not None}
        before = await table_counts(store)
        failure = error(await client.call_tool("update_progress", arguments))
    assert failure["error"] == "bad_request"
    assert f"{path}:" in failure["message"]
    assert await table_counts(store) == before


async def test_a_staff_user_cannot_be_enrolled(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client)
        failure = await refuse(client, "enroll_student", studentId=tenant.owner_user_id, courseId=course_id)
    assert failure == {"error": "not_found", "message": "Student not found"}


# ---- deletes


async def test_delete_enrollment_removes_progress_and_certificate_but_not_achievements(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client, lessons=1)
        await progress(client, learner.enrollment_id, learner.lesson_ids[0])
        deleted = await call(client, "delete_enrollment", enrollmentId=learner.enrollment_id)
        gone = await refuse(client, "get_enrollment", enrollmentId=learner.enrollment_id)
        again = await refuse(client, "delete_enrollment", enrollmentId=learner.enrollment_id)
        student = (await call(client, "get_student", studentId=learner.student_id))["student"]
        re_enrolled = await enroll(client, learner.student_id, learner.course_id)
    assert deleted == {"deleted": True, "id": learner.enrollment_id}
    assert gone == again == {"error": "not_found", "message": "Enrollment not found"}
    assert student["streak"] == {"current": 1, "longest": 1}
    assert re_enrolled["progress"]["percent"] == 0
    assert await table_counts(store) == {**NOTHING, "enrollments": 1, "learning_days": 1, "achievements": 2}


async def test_deleting_a_course_removes_its_enrollments_progress_and_certificates(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client, lessons=1)
        kept = await new_learner(client, lessons=2, student_id=learner.student_id)
        await progress(client, learner.enrollment_id, learner.lesson_ids[0])
        await progress(client, kept.enrollment_id, kept.lesson_ids[0])
        await call(client, "delete_course", courseId=learner.course_id)
        listed = await call(client, "list_enrollments", studentId=learner.student_id)
    assert [e["id"] for e in listed["data"]] == [kept.enrollment_id]
    counts = await table_counts(store)
    assert (counts["enrollments"], counts["lesson_progress"], counts["certificates"]) == (1, 1, 0)


async def test_deleting_a_lesson_removes_its_progress_and_recounts(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(
            client, sections=[{"title": "S", "lessons": [{"title": "A"}, {"title": "B"}]}]
        )
        section = course["sections"][0]
        doomed = section["lessons"][0]["id"]
        enrollment = await enroll(client, await new_student(client), course["id"])
        await progress(client, enrollment["id"], doomed)
        await call(client, "delete_lesson", courseId=course["id"], sectionId=section["id"], lessonId=doomed)
        fetched = (await call(client, "get_enrollment", enrollmentId=enrollment["id"]))["enrollment"]
    assert fetched["progress"] == {"completedLessons": 0, "totalLessons": 1, "percent": 0}
    assert (await table_counts(store))["lesson_progress"] == 0


# ---- acceptance 5: tenancy and permissions, for every enrollment tool


async def _ids(client) -> dict[str, str]:
    learner = await new_learner(client, lessons=1)
    return {
        "studentId": learner.student_id,
        "courseId": learner.course_id,
        "enrollmentId": learner.enrollment_id,
        "lessonId": learner.lesson_ids[0],
    }


# The other enrollment tools are in test_generated_matrices' isolation matrix, which allows an
# optional filter naming another producer's row to answer an empty list; these answer not_found.
ID_ARGUMENTS = {
    "list_enrollments": ("studentId", "courseId"),
    "list_certificates": ("studentId", "courseId"),
}
EXTRA_ARGUMENTS: dict[str, dict] = {}


@pytest.mark.parametrize("tool", ID_ARGUMENTS)
async def test_another_producers_ids_behave_like_missing_ones(store, tenant, tenant_factory, tool):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        theirs = await _ids(client)
    async with mcp_client(store, tenant.key) as client:
        mine = await _ids(client)
        arguments = {name: mine[name] for name in ID_ARGUMENTS[tool]} | EXTRA_ARGUMENTS.get(tool, {})
        before = await table_counts(store)
        for name in ID_ARGUMENTS[tool]:
            foreign = await refuse(client, tool, **arguments | {name: theirs[name]})
            absent = await refuse(client, tool, **arguments | {name: "nope_0000"})
            assert foreign == absent
            assert foreign["error"] == "not_found"
    assert await table_counts(store) == before
    async with mcp_client(store, other.key) as client:
        still = (await call(client, "get_enrollment", enrollmentId=theirs["enrollmentId"]))["enrollment"]
    assert still["progress"]["completedLessons"] == 0


async def test_lists_never_show_another_producers_enrollments_or_certificates(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        theirs = await new_learner(client, lessons=1)
        await progress(client, theirs.enrollment_id, theirs.lesson_ids[0])
    async with mcp_client(store, tenant.key) as client:
        mine = await new_learner(client, lessons=1)
        await progress(client, mine.enrollment_id, mine.lesson_ids[0])
        enrollments = await call(client, "list_enrollments")
        certificates = await call(client, "list_certificates")
    assert [e["id"] for e in enrollments["data"]] == [mine.enrollment_id]
    assert [c["enrollmentId"] for c in certificates["data"]] == [mine.enrollment_id]
    assert enrollments["pagination"]["total"] == certificates["pagination"]["total"] == 1


async def test_enrollment_tools_declare_their_permissions_and_hints(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in READ_TOOLS | WRITE_TOOLS:
        op = OPERATIONS_BY_NAME[name]
        assert op.permission == ("enrollments:read" if name in READ_TOOLS else "enrollments:write")
        expected = (name in READ_TOOLS, name == "delete_enrollment", name != "enroll_student", False)
        assert hints_of(tools[name]) == expected, name


# ---- REST


async def test_rest_routes_serve_enrollments(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student_id = await new_student(client)
        course_id, lessons = await new_course(client, lessons=1)
    app = Starlette(routes=rest_routes(Runtime(store=store)))
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test/api/v1", headers=headers
    ) as http:
        created = await http.post("/enrollments", json={"studentId": student_id, "courseId": course_id})
        path = f"/enrollments/{created.json()['enrollment']['id']}"
        updated = await http.patch(
            path, json={"lessonId": lessons[0], "completed": True, "watchedSeconds": 90}
        )
        fetched = await http.get(path)
        listed = await http.get("/enrollments", params={"studentId": student_id})
        certificates = await http.get("/certificates", params={"courseId": course_id})
        achievements = await http.get("/achievements", params={"studentId": student_id})
        deleted = await http.delete(path)
        missing = await http.get(path)
    responses = (created, updated, fetched, listed, certificates, achievements, deleted, missing)
    assert [response.status_code for response in responses] == [201, 200, 200, 200, 200, 200, 200, 404]
    assert updated.json()["events"]["certificateIssued"]["verificationCode"]
    assert fetched.json()["enrollment"]["lessons"][0]["watchedSeconds"] == 90
    assert len(listed.json()["data"]) == len(certificates.json()["data"]) == 1
    assert {a["code"] for a in achievements.json()["data"]} == {"first_lesson", "first_course"}
