"""The insight rollups (migration 0017) always equal a recount of the rows they summarize.

The rollup tables and the enrollments' `lessons_started` / `lessons_completed` are written only by
database triggers, on every insert, update and delete, including the ones cascades make. A trigger
that misses one path leaves a count that is wrong forever and that no insight test notices unless
it happens to hit that path. So these tests recount everything here, in Python, from the raw rows
read with plain SELECTs (never from the rollups, nor with the triggers' SQL), and compare after
every phase: a school of two tenants built through the tools over several days of a test clock,
deletes through the tools, writes no tool makes yet (raw SQL: deleting a student, changing learning
days, deleting a certificate alone), and the migration's backfill of rows that were there before it.
Rollup rows whose counts are all zero may stay behind; the comparison leaves them out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mcp import Client
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlmodel import col

from benchmarks import loader
from storage.engine import Store, open_store
from storage.ids import utcnow
from storage.migrate import upgrade_async
from storage.tables import (
    Certificate,
    Comment,
    Community,
    CommunityDay,
    CommunityPoster,
    Course,
    CourseActivity,
    CourseDay,
    Enrollment,
    LearningDay,
    LearningGap,
    Lesson,
    LessonProgress,
    LessonTotal,
    Member,
    Producer,
    SchoolDay,
    Thread,
    UnansweredThread,
    User,
)
from tests.support.clock import MONDAY_MORNING, Clock
from tests.support.community_factories import call, new_comment, new_community, new_student, new_thread
from tests.support.databases import raw_connection
from tests.support.enrollment_factories import enroll, progress
from tests.support.factories import Tenant, make_course, mcp_client
from tests.support.table_rows import valid_rows

NO_PREVIOUS_DAY = date(1, 1, 1)
"""The `previous_day` of a student's first learning day in `learning_gaps`."""

Rollup = dict[tuple[Any, ...], tuple[Any, ...]]
"""A rollup table as key columns -> count columns."""


def _table(model: Any) -> Table:
    return model.__table__


def _day(moment: datetime) -> date:
    """The UTC day of a timestamp (the engines hand back aware UTC datetimes)."""
    return moment.astimezone(UTC).date()


async def _rows(connection, model: Any) -> list[dict[str, Any]]:
    result = await connection.execute(select(_table(model)))
    return [dict(row) for row in result.mappings().all()]


def _without_zeros(rollup: Rollup) -> Rollup:
    return {key: counts for key, counts in rollup.items() if any(counts)}


def _summed(rows: list[tuple[tuple[Any, ...], tuple[int, ...]]]) -> Rollup:
    totals: dict[tuple[Any, ...], list[int]] = {}
    for key, counts in rows:
        into = totals.setdefault(key, [0] * len(counts))
        for position, count in enumerate(counts):
            into[position] += count
    return _without_zeros({key: tuple(counts) for key, counts in totals.items()})


def _expected_rollups(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Rollup]:
    """Every rollup recounted from the base rows, as migration 0017 and storage/tables.py define it."""
    lesson_course = {lesson["id"]: lesson["course_id"] for lesson in raw["lessons"]}
    enrollment_by_id = {enrollment["id"]: enrollment for enrollment in raw["enrollments"]}
    progress_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in raw["lesson_progress"]:
        progress_of[row["enrollment_id"]].append(row)

    enrollment_counts: Rollup = {
        (enrollment_id,): (
            len(progress_of[enrollment_id]),
            sum(1 for row in progress_of[enrollment_id] if row["completed"]),
        )
        for enrollment_id in enrollment_by_id
    }

    course_days: list[tuple[tuple[Any, ...], tuple[int, ...]]] = []
    for enrollment in raw["enrollments"]:
        course_days.append(((enrollment["course_id"], _day(enrollment["enrolled_at"])), (1, 0, 0, 0, 0)))
        if enrollment["completed_at"] is not None:
            took = round((enrollment["completed_at"] - enrollment["enrolled_at"]).total_seconds())
            course_days.append(
                ((enrollment["course_id"], _day(enrollment["completed_at"])), (0, 0, 1, took, 0))
            )
    for row in raw["lesson_progress"]:
        if row["completed_at"] is not None:
            course_days.append(
                ((lesson_course[row["lesson_id"]], _day(row["completed_at"])), (0, 1, 0, 0, 0))
            )
    for certificate in raw["certificates"]:
        course = enrollment_by_id[certificate["enrollment_id"]]["course_id"]
        course_days.append(((course, _day(certificate["issued_at"])), (0, 0, 0, 0, 1)))

    course_activity = [
        (
            (
                enrollment["course_id"],
                _day(enrollment["updated_at"]),
                int(enrollment_counts[(enrollment["id"],)][0] > 0),
                enrollment_counts[(enrollment["id"],)][1],
            ),
            (1,),
        )
        for enrollment in raw["enrollments"]
    ]

    lesson_totals = [
        ((row["lesson_id"],), (1, int(row["completed"]), row["watched_seconds"]))
        for row in raw["lesson_progress"]
    ]

    producer_of = {user["id"]: user["producer_id"] for user in raw["users"]}
    course_producer = {course["id"]: course["producer_id"] for course in raw["courses"]}
    community_producer = {community["id"]: community["producer_id"] for community in raw["communities"]}
    thread_community = {thread["id"]: thread["community_id"] for thread in raw["threads"]}

    def school(producer: str, moment: datetime, figure: int) -> tuple[tuple[Any, ...], tuple[int, ...]]:
        """One of a school's day figures: new students, enrollments, lessons completed, courses
        completed, certificates, threads, comments."""
        counts = [0] * 7
        counts[figure] = 1
        return (producer, _day(moment)), tuple(counts)

    school_days = [
        school(user["producer_id"], user["created_at"], 0)
        for user in raw["users"]
        if user["role"] == "student"
    ]
    for enrollment in raw["enrollments"]:
        school_days.append(school(enrollment["producer_id"], enrollment["enrolled_at"], 1))
        if enrollment["completed_at"] is not None:
            school_days.append(school(enrollment["producer_id"], enrollment["completed_at"], 3))
    school_days += [
        school(course_producer[lesson_course[row["lesson_id"]]], row["completed_at"], 2)
        for row in raw["lesson_progress"]
        if row["completed_at"] is not None
    ]
    school_days += [
        school(enrollment_by_id[certificate["enrollment_id"]]["producer_id"], certificate["issued_at"], 4)
        for certificate in raw["certificates"]
    ]
    school_days += [
        school(community_producer[thread["community_id"]], thread["created_at"], 5)
        for thread in raw["threads"]
    ]
    school_days += [
        school(community_producer[thread_community[comment["thread_id"]]], comment["created_at"], 6)
        for comment in raw["comments"]
    ]

    days_of: dict[str, list[date]] = defaultdict(list)
    for row in raw["learning_days"]:
        days_of[row["student_id"]].append(row["day"])
    learning_gaps = []
    for student, days in days_of.items():
        previous = NO_PREVIOUS_DAY
        for day in sorted(days):
            learning_gaps.append(((producer_of[student], day, previous), (1,)))
            previous = day

    thread_by_id = {thread["id"]: thread for thread in raw["threads"]}
    community_days = [
        ((member["community_id"], _day(member["joined_at"])), (1, 0, 0))
        for member in raw["community_members"]
    ]
    community_days += [
        ((thread["community_id"], _day(thread["created_at"])), (0, 1, 0)) for thread in raw["threads"]
    ]
    community_days += [
        ((thread_by_id[comment["thread_id"]]["community_id"], _day(comment["created_at"])), (0, 0, 1))
        for comment in raw["comments"]
    ]

    community_posters = [
        ((thread["community_id"], thread["author_id"]), (1, 0, 1)) for thread in raw["threads"]
    ]
    community_posters += [
        ((thread_by_id[comment["thread_id"]]["community_id"], comment["author_id"]), (0, 1, 1))
        for comment in raw["comments"]
    ]

    answered = {
        comment["thread_id"]
        for comment in raw["comments"]
        if comment["author_id"] != thread_by_id[comment["thread_id"]]["author_id"]
    }
    unanswered: Rollup = {
        (thread["id"],): (thread["community_id"], thread["created_at"])
        for thread in raw["threads"]
        if thread["id"] not in answered
    }

    return {
        "enrollments.lessons_started/lessons_completed": enrollment_counts,
        "course_days": _summed(course_days),
        "course_activity": _summed(course_activity),
        "lesson_totals": _summed(lesson_totals),
        "school_days": _summed(school_days),
        "learning_gaps": _summed(learning_gaps),
        "community_days": _summed(community_days),
        "community_posters": _summed(community_posters),
        "unanswered_threads": unanswered,
    }


def _found(rows: list[dict[str, Any]], keys: list[str], counts: list[str]) -> Rollup:
    return _without_zeros({tuple(row[k] for k in keys): tuple(row[c] for c in counts) for row in rows})


async def _found_rollups(connection) -> dict[str, Rollup]:
    """The rollups as the triggers left them, all-zero rows left out."""
    enrollments = await _rows(connection, Enrollment)
    unanswered = await _rows(connection, UnansweredThread)
    return {
        "enrollments.lessons_started/lessons_completed": {
            (row["id"],): (row["lessons_started"], row["lessons_completed"]) for row in enrollments
        },
        "course_days": _found(
            await _rows(connection, CourseDay),
            ["course_id", "day"],
            ["enrollments", "lessons_completed", "courses_completed", "completion_seconds", "certificates"],
        ),
        "course_activity": _found(
            await _rows(connection, CourseActivity),
            ["course_id", "day", "started", "lessons_completed"],
            ["enrollments"],
        ),
        "lesson_totals": _found(
            await _rows(connection, LessonTotal),
            ["lesson_id"],
            ["started", "completed", "watched_seconds"],
        ),
        "school_days": _found(
            await _rows(connection, SchoolDay),
            ["producer_id", "day"],
            [
                "new_students",
                "enrollments",
                "lessons_completed",
                "courses_completed",
                "certificates",
                "threads",
                "comments",
            ],
        ),
        "learning_gaps": _found(
            await _rows(connection, LearningGap),
            ["producer_id", "day", "previous_day"],
            ["learners"],
        ),
        "community_days": _found(
            await _rows(connection, CommunityDay),
            ["community_id", "day"],
            ["new_members", "threads", "comments"],
        ),
        "community_posters": _found(
            await _rows(connection, CommunityPoster),
            ["community_id", "user_id"],
            ["threads", "comments", "posts"],
        ),
        "unanswered_threads": {
            (row["thread_id"],): (row["community_id"], row["created_at"]) for row in unanswered
        },
    }


_BASE_TABLES = {
    "users": User,
    "courses": Course,
    "communities": Community,
    "lessons": Lesson,
    "enrollments": Enrollment,
    "lesson_progress": LessonProgress,
    "certificates": Certificate,
    "learning_days": LearningDay,
    "community_members": Member,
    "threads": Thread,
    "comments": Comment,
}


async def assert_rollups_match(store: Store, after: str = "") -> None:
    """Every rollup equals its recount from the base rows; the message names each differing key
    as `key: (expected, found)`, None where a side has no row."""
    async with raw_connection(store.url, commit=False) as connection:
        raw = {name: await _rows(connection, model) for name, model in _BASE_TABLES.items()}
        found = await _found_rollups(connection)
    expected = _expected_rollups(raw)
    differences = {
        table: {
            key: (expected[table].get(key), found[table].get(key))
            for key in sorted(set(expected[table]) | set(found[table]), key=repr)
            if expected[table].get(key) != found[table].get(key)
        }
        for table in expected
    }
    differences = {table: keys for table, keys in differences.items() if keys}
    assert differences == {}, f"rollups differ from the recount after {after or 'this phase'}: {differences}"


# ---- a school of one tenant, built through the tools over several days ------------------------


@dataclass
class School:
    """The ids a school's later phases reach for."""

    owner_id: str
    students: list[str] = field(default_factory=list)
    courses: dict[str, dict[str, Any]] = field(default_factory=dict)
    enrollments: dict[tuple[str, str], str] = field(default_factory=dict)
    communities: dict[str, str] = field(default_factory=dict)
    threads: dict[str, str] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)

    def lesson(self, course: str, section: int, position: int) -> str:
        return self.courses[course]["sections"][section]["lessons"][position]["id"]


async def _build_school(store: Store, client: Client, clock: Clock, school: School, label: str) -> None:
    """Four days of one school, the rollups checked after each: students registered on different
    days, two courses, progress (watched seconds rising, completions, a course completed with its
    certificate, a completion crossing midnight), two communities with members, threads, comments
    by the author and by others, and replies."""
    start = MONDAY_MORNING

    clock.now = start
    school.courses["python"] = await make_course(
        client,
        title="Python",
        sections=[
            {"title": "Start", "lessons": [{"title": "Welcome"}, {"title": "Setup"}]},
            {"title": "Deeper", "lessons": [{"title": "Loops"}]},
        ],
    )
    school.courses["sql"] = await make_course(
        client, title="SQL", sections=[{"title": "Only", "lessons": [{"title": "Select"}, {"title": "Join"}]}]
    )
    school.students += [await new_student(client, f"Ada {label}"), await new_student(client, f"Bob {label}")]
    ada, bob = school.students
    school.enrollments["ada", "python"] = (await enroll(client, ada, school.courses["python"]["id"]))["id"]
    await assert_rollups_match(store, f"{label}: day 0, courses, students, an enrollment")

    clock.now = start + timedelta(days=1, hours=3)
    school.students.append(await new_student(client, f"Cy {label}"))
    cy = school.students[2]
    school.enrollments["bob", "python"] = (await enroll(client, bob, school.courses["python"]["id"]))["id"]
    school.enrollments["ada", "sql"] = (await enroll(client, ada, school.courses["sql"]["id"]))["id"]
    await progress(
        client, school.enrollments["ada", "python"], school.lesson("python", 0, 0), watchedSeconds=30
    )
    await progress(
        client,
        school.enrollments["bob", "python"],
        school.lesson("python", 0, 0),
        completed=False,
        watchedSeconds=10,
    )
    await assert_rollups_match(store, f"{label}: day 1, enrollments and first progress")

    clock.now = start + timedelta(days=2)
    await progress(
        client,
        school.enrollments["bob", "python"],
        school.lesson("python", 0, 0),
        completed=False,
        watchedSeconds=50,
    )
    await progress(
        client, school.enrollments["bob", "python"], school.lesson("python", 0, 0), watchedSeconds=40
    )
    await progress(client, school.enrollments["ada", "python"], school.lesson("python", 0, 1))
    await progress(client, school.enrollments["ada", "sql"], school.lesson("sql", 0, 0), watchedSeconds=5)
    # The last moment of the day: Cy's enrollment falls on day 2, its first progress on day 3.
    clock.now = start.replace(hour=23, minute=59, second=59) + timedelta(days=2)
    school.enrollments["cy", "python"] = (await enroll(client, cy, school.courses["python"]["id"]))["id"]
    await assert_rollups_match(store, f"{label}: day 2, watched seconds raised, lessons completed")

    clock.now = start + timedelta(days=3)
    await progress(
        client, school.enrollments["cy", "python"], school.lesson("python", 0, 0), watchedSeconds=12
    )
    # Ada completes Python: the enrollment's completion and its certificate.
    await progress(
        client, school.enrollments["ada", "python"], school.lesson("python", 1, 0), watchedSeconds=90
    )
    # Completing an already completed lesson again, with more watched seconds: no second completion.
    await progress(
        client, school.enrollments["ada", "python"], school.lesson("python", 0, 0), watchedSeconds=45
    )
    await assert_rollups_match(store, f"{label}: day 3, a course completed with its certificate")

    clock.now = start + timedelta(days=1)
    school.communities["main"] = (await new_community(client, name=f"Main {label}"))["id"]
    school.communities["side"] = (await new_community(client, name=f"Side {label}"))["id"]
    main, side = school.communities["main"], school.communities["side"]
    for student in (ada, bob):
        await call(client, "add_member", communityId=main, userId=student)
    await call(client, "add_member", communityId=side, userId=ada)
    clock.now = start + timedelta(days=2, hours=1)
    await call(client, "add_member", communityId=main, userId=cy)
    school.threads["ada_alone"] = (await new_thread(client, main, ada, title="Ada talks to herself"))["id"]
    await new_comment(client, main, school.threads["ada_alone"], ada, content="Me again")
    school.threads["bob_asks"] = (await new_thread(client, main, bob, title="Bob asks"))["id"]
    school.threads["owner_posts"] = (await new_thread(client, main, school.owner_id, title="Rules"))["id"]
    school.threads["side"] = (await new_thread(client, side, ada, title="Side talk"))["id"]
    await assert_rollups_match(store, f"{label}: communities, members, threads, an author's own comment")

    clock.now = start + timedelta(days=3, hours=2)
    school.comments["ada_answers_bob"] = (
        await new_comment(client, main, school.threads["bob_asks"], ada, content="Try this")
    )["id"]
    school.comments["bob_replies"] = (
        await new_comment(
            client,
            main,
            school.threads["bob_asks"],
            bob,
            parent_id=school.comments["ada_answers_bob"],
            content="Thanks",
        )
    )["id"]
    school.comments["cy_replies"] = (
        await new_comment(
            client,
            main,
            school.threads["bob_asks"],
            cy,
            parent_id=school.comments["bob_replies"],
            content="Same",
        )
    )["id"]
    await new_comment(client, main, school.threads["owner_posts"], school.owner_id, content="And another")
    await new_comment(client, side, school.threads["side"], school.owner_id, content="Welcome")
    await assert_rollups_match(store, f"{label}: comments by others and replies")


async def _two_schools(store: Store, tenant: Tenant, tenant_factory) -> tuple[Clock, School, School]:
    """The same school built for two tenants on one clock: each tenant's rows roll up apart."""
    clock = Clock()
    other = await tenant_factory("Other School")
    first, second = School(tenant.owner_user_id), School(other.owner_user_id)
    async with mcp_client(store, tenant.key, clock=clock) as client:
        await _build_school(store, client, clock, first, "first")
    async with mcp_client(store, other.key, clock=clock) as client:
        await _build_school(store, client, clock, second, "second")
    return clock, first, second


async def test_rollups_match_a_recount_while_two_schools_are_built_over_several_days(
    store, tenant, tenant_factory
):
    _, first, second = await _two_schools(store, tenant, tenant_factory)
    await assert_rollups_match(store, "both schools built")
    async with raw_connection(store.url, commit=False) as connection:
        rows = await _rows(connection, CourseDay)
    certificates = {row["course_id"]: row["certificates"] for row in rows if row["certificates"]}
    # The recount is of a school that really has what the rollups must follow.
    assert certificates == {first.courses["python"]["id"]: 1, second.courses["python"]["id"]: 1}


async def test_rollups_match_a_recount_after_each_delete_through_the_tools(store, tenant, tenant_factory):
    clock, school, _ = await _two_schools(store, tenant, tenant_factory)
    main, side = school.communities["main"], school.communities["side"]
    python = school.courses["python"]
    _, bob, cy = school.students
    clock.now = MONDAY_MORNING + timedelta(days=5)
    async with mcp_client(store, tenant.key, clock=clock) as client:
        steps: list[tuple[str, str, dict[str, Any]]] = [
            (
                "delete_comment with replies (Bob's thread unanswered again)",
                "delete_comment",
                {
                    "communityId": main,
                    "threadId": school.threads["bob_asks"],
                    "commentId": school.comments["ada_answers_bob"],
                },
            ),
            (
                "delete_thread with comments",
                "delete_thread",
                {"communityId": main, "threadId": school.threads["ada_alone"]},
            ),
            ("remove_member", "remove_member", {"communityId": main, "userId": cy}),
            (
                "delete_enrollment with certificate and progress",
                "delete_enrollment",
                {"enrollmentId": school.enrollments["ada", "python"]},
            ),
            (
                "delete_lesson with progress",
                "delete_lesson",
                {
                    "courseId": python["id"],
                    "sectionId": python["sections"][0]["id"],
                    "lessonId": school.lesson("python", 0, 0),
                },
            ),
            (
                "delete_section",
                "delete_section",
                {"courseId": python["id"], "sectionId": python["sections"][1]["id"]},
            ),
            ("delete_course", "delete_course", {"courseId": school.courses["sql"]["id"]}),
        ]
        for description, tool, arguments in steps:
            await call(client, tool, **arguments)
            await assert_rollups_match(store, description)
        # What is left still moves: Bob's progress on the remaining lesson, a new thread.
        await progress(client, school.enrollments["bob", "python"], school.lesson("python", 0, 1))
        await new_thread(client, main, bob, title="After the deletes")
        await assert_rollups_match(store, "writes after the deletes")
        await call(client, "delete_course", courseId=python["id"])
        await assert_rollups_match(store, "delete_course with enrollments and progress")
        # Main's threads are all unanswered by now (Ada's answer went with delete_comment).
        await call(client, "delete_community", communityId=main)
        await assert_rollups_match(store, "delete_community with members, threads and comments")
        # Side's one thread is answered: the owner commented on Ada's thread.
        await call(client, "delete_community", communityId=side)
        await assert_rollups_match(store, "delete_community with a thread answered by another user")


# ---- raw SQL: writes no tool makes yet ----------------------------------------------------------


async def _execute(store: Store, *statements: Any) -> None:
    """`statements` in one committed transaction, outside the store (as another program would)."""
    async with raw_connection(store.url) as connection:
        for statement in statements:
            await connection.execute(statement)


async def _learning_days(store: Store, student_id: str) -> list[date]:
    days = _table(LearningDay)
    async with raw_connection(store.url, commit=False) as connection:
        result = await connection.execute(select(days.c.day).where(days.c.student_id == student_id))
        return sorted(result.scalars().all())


def _learning_day_of(student_id: str, day: date) -> Any:
    days = _table(LearningDay)
    return delete(days).where(days.c.student_id == student_id, days.c.day == day)


async def test_rollups_match_a_recount_after_progress_is_uncompleted_and_moved_in_raw_sql(
    store, tenant, tenant_factory
):
    _, school, _ = await _two_schools(store, tenant, tenant_factory)
    rows = _table(LessonProgress)
    # update_progress never un-completes a lesson nor moves a completion: another program might.
    await _execute(
        store,
        update(rows)
        .where(rows.c.enrollment_id == school.enrollments["bob", "python"])
        .values(completed=False, completed_at=None),
    )
    await assert_rollups_match(store, "un-completing a lesson (raw SQL)")
    await _execute(
        store,
        update(rows)
        .where(rows.c.enrollment_id == school.enrollments["ada", "sql"])
        .values(completed_at=MONDAY_MORNING + timedelta(days=6), watched_seconds=7),
    )
    await assert_rollups_match(
        store, "moving a completion to another day, lowering watched seconds (raw SQL)"
    )
    await _execute(
        store,
        update(rows)
        .where(rows.c.enrollment_id == school.enrollments["bob", "python"])
        .values(completed=True, completed_at=MONDAY_MORNING + timedelta(days=4)),
    )
    await assert_rollups_match(store, "completing a lesson again (raw SQL)")


async def test_rollups_match_a_recount_as_learning_days_are_inserted_and_deleted_one_by_one(
    store, tenant, tenant_factory
):
    _, school, _ = await _two_schools(store, tenant, tenant_factory)
    ada = school.students[0]
    monday = MONDAY_MORNING.date()
    days = _table(LearningDay)
    # Ada learned on days 1, 2 and 3 of the week.
    assert await _learning_days(store, ada) == [monday + timedelta(days=n) for n in (1, 2, 3)]
    await _execute(store, _learning_day_of(ada, monday + timedelta(days=2)))
    await assert_rollups_match(store, "deleting the middle one of three learning days (raw SQL)")
    await _execute(store, insert(days).values(student_id=ada, day=monday + timedelta(days=2)))
    await assert_rollups_match(store, "inserting a learning day between two others (raw SQL)")
    await _execute(store, insert(days).values(student_id=ada, day=monday - timedelta(days=4)))
    await assert_rollups_match(store, "inserting a learning day before the first (raw SQL)")
    await _execute(store, insert(days).values(student_id=ada, day=monday + timedelta(days=9)))
    await assert_rollups_match(store, "inserting a learning day after the last (raw SQL)")
    await _execute(store, _learning_day_of(ada, monday - timedelta(days=4)))
    await assert_rollups_match(store, "deleting a student's first learning day (raw SQL)")
    await _execute(store, _learning_day_of(ada, monday + timedelta(days=9)))
    await assert_rollups_match(store, "deleting a student's last learning day (raw SQL)")


async def test_rollups_match_a_recount_when_one_statement_deletes_several_learning_days_of_a_student(
    store, tenant, tenant_factory
):
    _, school, _ = await _two_schools(store, tenant, tenant_factory)
    ada = school.students[0]
    monday = MONDAY_MORNING.date()
    days = _table(LearningDay)
    assert await _learning_days(store, ada) == [monday + timedelta(days=n) for n in (1, 2, 3)]
    await _execute(
        store,
        delete(days).where(days.c.student_id == ada, days.c.day < monday + timedelta(days=3)),
    )
    await assert_rollups_match(store, "deleting two adjacent learning days in one statement (raw SQL)")


async def test_rollups_match_a_recount_when_one_statement_inserts_several_learning_days_of_a_student(
    store, tenant, tenant_factory
):
    _, school, _ = await _two_schools(store, tenant, tenant_factory)
    ada = school.students[0]
    monday = MONDAY_MORNING.date()
    days = _table(LearningDay)
    await _execute(
        store,
        insert(days).values([{"student_id": ada, "day": monday + timedelta(days=n)} for n in (5, 7)]),
    )
    await assert_rollups_match(store, "inserting two learning days after the last in one statement (raw SQL)")


async def test_rollups_match_a_recount_after_a_certificate_is_deleted_alone(store, tenant, tenant_factory):
    _, school, _ = await _two_schools(store, tenant, tenant_factory)
    certificates = _table(Certificate)
    await _execute(
        store, delete(certificates).where(certificates.c.enrollment_id == school.enrollments["ada", "python"])
    )
    await assert_rollups_match(store, "deleting a certificate, its enrollment kept (raw SQL)")


async def test_rollups_match_a_recount_after_students_are_deleted_with_all_they_cascade_to(
    store, tenant, tenant_factory
):
    _, school, _ = await _two_schools(store, tenant, tenant_factory)
    ada, bob, cy = school.students
    users = _table(User)
    # Bob: enrollments with progress, two learning days, threads with others' comments, replies,
    # memberships.
    await _execute(store, delete(users).where(users.c.id == bob))
    await assert_rollups_match(store, "deleting a student (Bob) and all it cascades to (raw SQL)")
    # Ada: a completed enrollment with its certificate, comments on others' threads.
    await _execute(store, delete(users).where(users.c.id == ada))
    await assert_rollups_match(store, "deleting a student with a certificate (Ada) (raw SQL)")
    # Cy: one learning day, one enrollment, a membership.
    await _execute(store, delete(users).where(users.c.id == cy))
    await assert_rollups_match(store, "deleting a student with a single learning day (Cy) (raw SQL)")


# ---- the migration's backfill ------------------------------------------------------------------


def _rows_before_0017() -> list[tuple[Table, dict[str, Any]]]:
    """Rows of two producers written at revision 0016, varied enough for every rollup: students of
    different days, a completed enrollment with a certificate, progress completed on other days,
    several learning days, threads answered only by their author and by someone else."""
    rows = valid_rows("a") + valid_rows("b")
    start = MONDAY_MORNING
    users, enrollments, progress_table = _table(User), _table(Enrollment), _table(LessonProgress)
    for n, role in enumerate(["student", "student", "staff"]):
        created = start + timedelta(days=n, hours=n)
        rows.append(
            (
                users,
                {
                    "id": f"user_more{n}",
                    "producer_id": "prod_a",
                    "name": f"More {n}",
                    "email": f"more{n}@example.com",
                    "email_normalized": f"more{n}@example.com",
                    "role": role,
                    "created_at": created,
                    "updated_at": created,
                },
            )
        )
    rows.append(
        (
            _table(Lesson),
            {
                **next(v for t, v in rows if t.name == "lessons" and v["id"] == "lesson_a"),
                "id": "lesson_a2",
                "order": 1,
            },
        )
    )
    rows += [
        (
            enrollments,
            {
                "id": "enr_more0",
                "producer_id": "prod_a",
                "student_id": "user_more0",
                "course_id": "course_a",
                "enrolled_at": start,
                "completed_at": start + timedelta(days=2, seconds=7),
                "updated_at": start + timedelta(days=2, seconds=7),
            },
        ),
        (
            enrollments,
            {
                "id": "enr_more1",
                "producer_id": "prod_a",
                "student_id": "user_more1",
                "course_id": "course_a",
                "enrolled_at": start + timedelta(days=1),
                "updated_at": start + timedelta(days=3),
            },
        ),
        (
            progress_table,
            {
                "enrollment_id": "enr_more0",
                "lesson_id": "lesson_a",
                "completed": True,
                "watched_seconds": 40,
                "completed_at": start + timedelta(days=1),
            },
        ),
        (
            progress_table,
            {
                "enrollment_id": "enr_more0",
                "lesson_id": "lesson_a2",
                "completed": True,
                "watched_seconds": 70,
                "completed_at": start + timedelta(days=2, seconds=7),
            },
        ),
        (
            progress_table,
            {
                "enrollment_id": "enr_more1",
                "lesson_id": "lesson_a",
                "completed": False,
                "watched_seconds": 15,
            },
        ),
        (
            _table(Certificate),
            {
                "id": "cert_more0",
                "enrollment_id": "enr_more0",
                "verification_code": "codemore0",
                "issued_at": start + timedelta(days=2, seconds=7),
            },
        ),
    ]
    rows += [
        (_table(LearningDay), {"student_id": student, "day": start.date() + timedelta(days=n)})
        for student, days in (("user_more0", (1, 2, 5)), ("user_more1", (3,)))
        for n in days
    ]
    rows += [
        (
            _table(Member),
            {
                "id": "mem_more0",
                "community_id": "comm_a",
                "user_id": "user_more0",
                "role": "member",
                "joined_at": start + timedelta(days=1),
                "updated_at": start + timedelta(days=1),
            },
        ),
        (
            _table(Thread),
            {
                "id": "thread_more0",
                "community_id": "comm_a",
                "author_id": "user_more0",
                "title": "Answered",
                "content": "Anyone?",
                "pinned": False,
                "comment_count": 1,
                "last_activity_at": start + timedelta(days=2),
                "created_at": start + timedelta(days=1),
                "updated_at": start + timedelta(days=2),
            },
        ),
        (
            _table(Comment),
            {
                "id": "cmt_more0",
                "thread_id": "thread_more0",
                "author_id": "user_studenta",
                "content": "Yes",
                "created_at": start + timedelta(days=2),
                "updated_at": start + timedelta(days=2),
            },
        ),
    ]
    return rows


async def test_the_upgrade_to_0017_fills_the_rollups_from_the_rows_already_there(databases):
    url = databases.new("rollups")
    await upgrade_async(url, "0016")
    rows = _rows_before_0017()
    async with raw_connection(url) as connection:
        for full, values in rows:
            # A plain table of the given columns: no column 0016 lacks, not even by a default.
            older = sa_table(full.name, *(sa_column(name, full.c[name].type) for name in values))
            await connection.execute(insert(older).values(values))

    await upgrade_async(url)

    async with open_store(url) as store:
        await assert_rollups_match(store, "the upgrade's backfill")
        async with raw_connection(url, commit=False) as connection:
            enrollments = await _rows(connection, Enrollment)
        started = {row["id"]: row["lessons_started"] for row in enrollments}
        # The backfill had something to fill: the recount above is not of empty tables.
        assert started == {"enr_more0": 2, "enr_more1": 1, "enr_a": 1, "enr_b": 1}
        # The triggers run from there on.
        async with raw_connection(url) as connection:
            await connection.execute(delete(_table(Comment)).where(_table(Comment).c.id == "cmt_more0"))
            await connection.execute(delete(_table(Enrollment)).where(_table(Enrollment).c.id == "enr_more0"))
        await assert_rollups_match(store, "deletes after the upgrade")


async def test_rollups_match_a_recount_after_the_benchmark_loader_bulk_loads(store):
    """The benchmark's loader writes its batches without triggers on PostgreSQL and recounts the
    rollups after (benchmarks/loader.py); on SQLite the triggers count as it writes. Either way
    the rollups are what the rows say."""
    tenant = await loader.create_tenant(store)
    await loader.add_overhead_course(store, tenant)
    await loader.load_students(store, tenant, 0, 300)
    await loader.load_insight_course(store, tenant, students=300, start=0, stop=30, now=utcnow())
    await assert_rollups_match(store, after="the benchmark loader's bulk load")


async def test_rollups_match_a_recount_after_a_whole_school_is_deleted(store, tenant, tenant_factory):
    """A producer's delete cascades through every table at once: its rollups go, the other
    school's stay as its rows say (on PostgreSQL, a rollup row its own statement already changed
    is checked against its parent again on every update)."""
    await _two_schools(store, tenant, tenant_factory)
    await _execute(store, delete(Producer).where(col(Producer.id) == tenant.producer_id))
    await assert_rollups_match(store, "the first school's producer deleted")
