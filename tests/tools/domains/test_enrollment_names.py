"""Names where an agent needs them: enrollments, their lessons, certificates and achievements say
what their ids stand for, read in the statements that read them (never one more per row); the
`completed` filter of list_enrollments; `updatedAt` moving with every change of an enrollment."""

from __future__ import annotations

from tests.support.clock import Clock
from tests.support.community_factories import call, new_student
from tests.support.enrollment_factories import enroll, new_course, new_learner, progress
from tests.support.factories import make_section, mcp_client, principal_of
from tools.core.runner import run_operation
from tools.registry import OPERATIONS_BY_NAME


async def _statement_count(store, tenant, tool: str, arguments: dict) -> int:
    with store.statements_seen() as seen:
        await run_operation(OPERATIONS_BY_NAME[tool], arguments, store=store, principal=principal_of(tenant))
    return len(seen)


async def test_enrollments_listed_and_fetched_name_their_course_and_student(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ada = await new_student(client, "Ada Lovelace")
        course_id, _ = await new_course(
            client, lessons=1, title="Analytical Engines", slug="analytical-engines"
        )
        enrollment_id = (await enroll(client, ada, course_id))["id"]
        listed = (await call(client, "list_enrollments", studentId=ada, courseId=course_id))["data"]
        fetched = (await call(client, "get_enrollment", enrollmentId=enrollment_id))["enrollment"]
    for enrollment in (listed[0], fetched):
        names = (enrollment["studentName"], enrollment["courseTitle"], enrollment["courseSlug"])
        assert names == ("Ada Lovelace", "Analytical Engines", "analytical-engines")


async def test_get_enrollment_places_each_lesson_in_its_section_and_the_course(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        sections = [
            {"title": "Basics", "lessons": [{"title": "Setup"}, {"title": "Hello"}]},
            {"title": "Loops", "lessons": [{"title": "While"}]},
        ]
        course = (
            await call(
                client,
                "create_course",
                title="Python",
                slug="python-names",
                categoryId="cat_web_development",
                sections=sections,
            )
        )["course"]
        enrollment = await enroll(client, await new_student(client), course["id"])
        lessons = (await call(client, "get_enrollment", enrollmentId=enrollment["id"]))["enrollment"][
            "lessons"
        ]
    section_ids = [section["id"] for section in course["sections"]]
    assert [(x["position"], x["title"], x["sectionTitle"], x["sectionId"]) for x in lessons] == [
        (1, "Setup", "Basics", section_ids[0]),
        (2, "Hello", "Basics", section_ids[0]),
        (3, "While", "Loops", section_ids[1]),
    ]


async def test_list_enrollments_filters_by_completed(store, tenant, http):
    async with mcp_client(store, tenant.key) as client:
        done = await new_learner(client, lessons=1)
        started = await new_learner(client, lessons=2)
        await progress(client, done.enrollment_id, done.lesson_ids[0])
        await progress(client, started.enrollment_id, started.lesson_ids[0])
        completed = await call(client, "list_enrollments", completed=True)
        not_completed = await call(client, "list_enrollments", completed=False)
        every = await call(client, "list_enrollments")
    over_rest = (await http.get("/enrollments", params={"completed": "false"})).json()
    assert [e["id"] for e in completed["data"]] == [done.enrollment_id]
    assert completed["data"][0]["completedAt"] is not None
    assert [e["id"] for e in not_completed["data"]] == [started.enrollment_id]
    assert [e["id"] for e in over_rest["data"]] == [started.enrollment_id]
    assert {e["id"] for e in every["data"]} == {done.enrollment_id, started.enrollment_id}


async def test_updated_at_moves_with_each_change_and_not_with_a_repeat(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        learner = await new_learner(client, lessons=2)
        enrolled = (await call(client, "get_enrollment", enrollmentId=learner.enrollment_id))["enrollment"]
        clock.advance(minutes=1)
        watched = await progress(
            client, learner.enrollment_id, learner.lesson_ids[0], completed=False, watchedSeconds=30
        )
        clock.advance(minutes=1)
        repeated = await progress(
            client, learner.enrollment_id, learner.lesson_ids[0], completed=False, watchedSeconds=10
        )
        clock.advance(minutes=1)
        await progress(client, learner.enrollment_id, learner.lesson_ids[0])
        clock.advance(minutes=1)
        finished = await progress(client, learner.enrollment_id, learner.lesson_ids[1])
        listed = (await call(client, "list_enrollments", studentId=learner.student_id))["data"][0]
    assert enrolled["updatedAt"] == enrolled["enrolledAt"] == "2026-03-16T10:00:00.000Z"
    assert watched["enrollment"]["updatedAt"] == "2026-03-16T10:01:00.000Z"
    assert repeated["enrollment"]["updatedAt"] == "2026-03-16T10:01:00.000Z"  # nothing changed
    assert (
        finished["enrollment"]["updatedAt"]
        == finished["enrollment"]["completedAt"]
        == "2026-03-16T10:04:00.000Z"
    )
    assert listed["updatedAt"] == "2026-03-16T10:04:00.000Z"


async def test_certificates_and_achievements_name_the_student_and_course(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ada = await new_student(client, "Ada Lovelace")
        learner = await new_learner(client, lessons=1, student_id=ada)
        await call(client, "update_course", courseId=learner.course_id, title="Notes on the Engine")
        step = await progress(client, learner.enrollment_id, learner.lesson_ids[0])
        certificates = (await call(client, "list_certificates", studentId=ada))["data"]
        achievements = (await call(client, "list_achievements", studentId=ada))["data"]
    issued = step["events"]["certificateIssued"]
    assert (issued["studentName"], issued["courseTitle"]) == ("Ada Lovelace", "Notes on the Engine")
    assert certificates == [issued]
    assert {a["studentName"] for a in step["events"]["newAchievements"]} == {"Ada Lovelace"}
    assert {a["studentName"] for a in achievements} == {"Ada Lovelace"}
    assert len(achievements) == 2  # first_lesson, first_course


async def test_named_reads_cost_the_same_statements_for_one_row_or_ten(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student_id = await new_student(client)
        for _ in range(10):
            learner = await new_learner(client, lessons=1, student_id=student_id)
            await progress(client, learner.enrollment_id, learner.lesson_ids[0])
        await new_learner(client, lessons=1, student_id=student_id)  # not completed
    counts = {
        tool: [
            await _statement_count(store, tenant, tool, {"studentId": student_id, "limit": n, **extra})
            for n in (1, 10)
        ]
        for tool, extra in [
            ("list_certificates", {}),
            ("list_achievements", {}),
            ("list_enrollments", {"completed": True}),
        ]
    }
    # The student, the page, its count, and one statement for the whole page's names (and, for
    # enrollments, their lesson counts). Achievements take the name from the student's row; their
    # page of 10 holds all three, so it needs no count.
    assert counts == {"list_certificates": [4, 4], "list_achievements": [3, 2], "list_enrollments": [4, 4]}


async def test_a_course_with_no_lessons_yet_still_names_everything(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course_id, _ = await new_course(client, lessons=0, title="Coming soon")
        await make_section(client, course_id, "Empty")
        enrollment = await enroll(client, await new_student(client, "Grace"), course_id)
        fetched = (await call(client, "get_enrollment", enrollmentId=enrollment["id"]))["enrollment"]
    assert (enrollment["courseTitle"], enrollment["studentName"]) == ("Coming soon", "Grace")
    assert fetched["lessons"] == [] and fetched["progress"]["totalLessons"] == 0
