"""enroll_students: up to 1,000 students in one call, an outcome per student, progress as it goes,
and a statement count that grows per chunk of students, never per student."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, insert, select
from sqlmodel import col

from storage.engine import Store
from storage.ids import new_id, utcnow
from storage.tables import AuditEvent, Enrollment, Event, User
from tests.support.community_factories import call, refuse
from tests.support.enrollment_factories import new_course
from tests.support.factories import add_webhook, mcp_client, principal_of, statements
from tools.core.runner import run_operation
from tools.domains.enrollments import EnrollStudentsResult
from tools.registry import OPERATIONS_BY_NAME


async def add_students(
    store: Store, producer_id: str, count: int, *, name: str = "Student"
) -> list[tuple[str, str]]:
    """`count` students of `producer_id`, inserted in one statement (registering 1,000 through the
    tool would mostly measure password hashing): their ids and emails."""
    now, tag = utcnow(), secrets.token_hex(3)
    rows = []
    for n in range(count):
        email = f"{name.lower()}-{tag}-{n}@example.com"
        rows.append(
            {
                "id": new_id("user"),
                "producer_id": producer_id,
                "name": f"{name} {n}",
                "email": email,
                "email_normalized": email,
                "role": "student",
                "created_at": now,
                "updated_at": now,
            }
        )
    async with store.writing() as db:
        await db.session.execute(insert(User), rows)
    return [(row["id"], row["email"]) for row in rows]


async def _count(store: Store, statement) -> int:
    async with store.sessions() as session:
        return (await session.execute(statement)).scalar_one()


# ---- acceptance: 1,000 students in one call


async def test_enrolls_1000_students_in_one_call_and_a_repeat_finds_them_all_enrolled(store, tenant):
    students = await add_students(store, tenant.producer_id, 1000)
    ids = [student_id for student_id, _ in students]
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client, lessons=2)
        first = await call(client, "enroll_students", courseId=course_id, studentIds=ids)
        again = await call(client, "enroll_students", courseId=course_id, studentIds=ids)
        listed = await call(client, "list_enrollments", courseId=course_id, limit=1)

    assert (first["enrolled"], first["alreadyEnrolled"], first["notFound"]) == (1000, 0, 0)
    assert [result["studentId"] for result in first["results"]] == ids  # in the order given
    assert {result["outcome"] for result in first["results"]} == {"enrolled"}
    assert (again["enrolled"], again["alreadyEnrolled"], again["notFound"]) == (0, 1000, 0)
    assert [result["enrollmentId"] for result in again["results"]] == [
        result["enrollmentId"] for result in first["results"]
    ]
    assert "email" not in first["results"][0]  # only when enrolling by emails
    assert listed["pagination"]["total"] == 1000
    assert listed["data"][0]["progress"] == {"completedLessons": 0, "totalLessons": 2, "percent": 0}
    created = select(func.count()).select_from(Event).where(col(Event.type) == "enrollment.created")
    assert await _count(store, created) == 1000  # one event per new enrollment, none for the repeat
    audited = (
        select(func.count()).select_from(AuditEvent).where(col(AuditEvent.operation) == "enroll_students")
    )
    assert await _count(store, audited) == 2  # one record per call


async def test_each_student_has_its_own_outcome(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    [(theirs, _)] = await add_students(store, other.producer_id, 1)
    (enrolled_before, _), (new, _) = await add_students(store, tenant.producer_id, 2)
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client)
        before = await call(client, "enroll_student", studentId=enrolled_before, courseId=course_id)
        given = [new, "user_nobody", enrolled_before, theirs, new, tenant.owner_user_id]
        result = await call(client, "enroll_students", courseId=course_id, studentIds=given)

    outcomes = [(r["studentId"], r["outcome"], r["enrollmentId"] is not None) for r in result["results"]]
    assert outcomes == [
        (new, "enrolled", True),
        ("user_nobody", "not_found", False),
        (enrolled_before, "already_enrolled", True),
        (theirs, "not_found", False),  # another producer's student is as missing as no student
        (tenant.owner_user_id, "not_found", False),  # staff are not students
    ]  # the duplicate of `new` is reported once
    assert result["results"][2]["enrollmentId"] == before["enrollment"]["id"]
    assert (result["enrolled"], result["alreadyEnrolled"], result["notFound"]) == (1, 1, 3)
    assert await _count(store, select(func.count()).select_from(Enrollment)) == 2


async def test_enrolls_by_email_case_insensitively_reporting_each_email_as_given(
    store, tenant, tenant_factory
):
    other = await tenant_factory("Other School")
    [(_, theirs)] = await add_students(store, other.producer_id, 1)
    [(ada_id, ada_email)] = await add_students(store, tenant.producer_id, 1, name="Ada")
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client)
        emails = [ada_email.upper(), "nobody@example.com", theirs, ada_email]
        result = await call(client, "enroll_students", courseId=course_id, emails=emails)

    assert [(r["email"], r["studentId"], r["outcome"]) for r in result["results"]] == [
        (ada_email.upper(), ada_id, "enrolled"),
        ("nobody@example.com", None, "not_found"),
        (theirs, None, "not_found"),
    ]
    assert (result["enrolled"], result["alreadyEnrolled"], result["notFound"]) == (1, 0, 2)


async def test_another_producers_course_is_not_found_and_enrolls_nobody(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    [(student_id, _)] = await add_students(store, tenant.producer_id, 1)
    async with mcp_client(store, other.key) as client:
        their_course, _ = await new_course(client)
    async with mcp_client(store, tenant.key) as client:
        failure = await refuse(client, "enroll_students", courseId=their_course, studentIds=[student_id])
    assert failure == {"error": "not_found", "message": "Course not found"}
    assert await _count(store, select(func.count()).select_from(Enrollment)) == 0


# ---- progress notifications


async def test_the_sdk_client_receives_progress_notifications_as_chunks_finish(store, tenant):
    ids = [student_id for student_id, _ in await add_students(store, tenant.producer_id, 1000)]
    received: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append((progress, total, message))

    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client)
        result = await client.call_tool(
            "enroll_students", {"courseId": course_id, "studentIds": ids}, progress_callback=on_progress
        )
    assert not result.is_error
    assert len(received) >= 5
    assert [progress for progress, _, _ in received] == sorted({progress for progress, _, _ in received})
    assert received[-1][:2] == (1000, 1000)
    assert {total for _, total, _ in received} == {1000}
    assert received[0][2] == "100 of 1000 students"


async def test_no_progress_token_no_notifications_and_the_same_result(store, tenant):
    ids = [student_id for student_id, _ in await add_students(store, tenant.producer_id, 150)]
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client)
        result = await call(client, "enroll_students", courseId=course_id, studentIds=ids)
    assert result["enrolled"] == 150


# ---- statements: constant per chunk of 100, not per student


async def _statements_to_enroll(store: Store, tenant, count: int) -> list[str]:
    ids = [student_id for student_id, _ in await add_students(store, tenant.producer_id, count)]
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client)
    op = OPERATIONS_BY_NAME["enroll_students"]
    with statements(store) as seen:
        result = await run_operation(
            op, {"courseId": course_id, "studentIds": ids}, store=store, principal=principal_of(tenant)
        )
    assert isinstance(result, EnrollStudentsResult)
    assert result.enrolled == count
    return seen


async def test_statements_grow_by_chunk_of_100_students_not_by_student(store, tenant):
    await add_webhook(store, tenant.producer_id)  # every event also queues a delivery
    few = await _statements_to_enroll(store, tenant, 10)
    many = await _statements_to_enroll(store, tenant, 1000)
    extra_chunks = 1000 // 100 - 1
    # Each further chunk of 100 costs one insert of its enrollments; the events and their webhook
    # deliveries are written in batches whatever their number (and once the producer's sequence
    # passes a hundred, old events, finished deliveries and audit records are pruned: 3 more).
    assert len(many) - len(few) <= extra_chunks + 3, (len(few), len(many))
    inserts = [
        statement for statement in many if statement.lstrip().upper().startswith("INSERT INTO ENROLLMENTS")
    ]
    assert len(inserts) == 10


# ---- validation


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "Invalid input: studentIds: give studentIds or emails, one is required"),
        (
            {"studentIds": ["x"], "emails": ["a@example.com"]},
            "Invalid input: studentIds: give studentIds or emails, not both",
        ),
        (
            {"studentIds": []},
            "Invalid input: studentIds: List should have at least 1 item after validation, not 0",
        ),
        ({"emails": []}, "Invalid input: emails: List should have at least 1 item after validation, not 0"),
        (
            {"studentIds": [f"user_{n}" for n in range(1001)]},
            "Invalid input: studentIds: List should have at most 1000 items after validation, not 1001",
        ),
        (
            {"emails": ["not-an-email"]},
            "Invalid input: emails[0]: must be an email address like name@example.com",
        ),
    ],
    ids=["neither", "both", "no ids", "no emails", "1001 ids", "bad email"],
)
async def test_a_bad_list_is_bad_request_naming_the_field(store, tenant, arguments, message):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client)
        failure = await refuse(client, "enroll_students", courseId=course_id, **arguments)
    assert failure == {"error": "bad_request", "message": message}


# ---- REST


async def test_rest_post_enrollments_bulk_answers_200_with_the_outcomes(store, tenant, http):
    (first, _), (second, _) = await add_students(store, tenant.producer_id, 2)
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client)
    response = await http.post(
        "/enrollments/bulk", json={"courseId": course_id, "studentIds": [first, second, "nope"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["studentId"], r["outcome"]) for r in body["results"]] == [
        (first, "enrolled"),
        (second, "enrolled"),
        ("nope", "not_found"),
    ]
    assert (body["enrolled"], body["alreadyEnrolled"], body["notFound"]) == (2, 0, 1)
    refused = await http.post("/enrollments/bulk", json={"courseId": course_id})
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Invalid input: studentIds: ")
