"""Streaks, achievements and certificates: the pure rules, and what progress updates unlock over days."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from storage.queries import insert_new
from storage.tables import Achievement, LearningDay
from tests.support.clock import Clock
from tests.support.community_factories import call, new_student
from tests.support.enrollment_factories import codes, new_learner, progress, table_counts
from tests.support.factories import make_lesson, mcp_client
from tools.domains.achievements import RULES, LearnerStats, earned, verification_code
from tools.domains.streaks import streaks, utc_day

DAY = date(2026, 3, 1)


def _days(*numbers: int) -> list[date]:
    """Day n of the month (1-based) as dates."""
    return [DAY + timedelta(days=n - 1) for n in numbers]


# ---- streaks, pure


STREAKS = {
    "no activity": ((), 5, (0, 0)),
    "today only": ((5,), 5, (1, 1)),
    "days 1, 2, 3, 5 seen on day 5": ((1, 2, 3, 5), 5, (1, 3)),
    "days 1, 2, 3, 5 seen on day 6": ((1, 2, 3, 5), 6, (1, 3)),
    "days 1, 2, 3, 5 seen on day 7": ((1, 2, 3, 5), 7, (0, 3)),
    "run ending yesterday still counts": ((2, 3, 4), 5, (3, 3)),
    "run ending two days ago is broken": ((2, 3, 4), 6, (0, 3)),
    "current run is the longest": ((1, 3, 4, 5, 6), 6, (4, 4)),
    "duplicates and disorder": ((3, 1, 2, 2, 3), 3, (3, 3)),
    "days after today are ignored": ((1, 2, 9), 2, (2, 2)),
}


@pytest.mark.parametrize(("active", "today", "expected"), STREAKS.values(), ids=STREAKS.keys())
def test_streaks(active, today, expected):
    streak = streaks(_days(*active), today=_days(today)[0])
    assert (streak.current, streak.longest) == expected


def test_a_learning_day_is_the_utc_calendar_day():
    new_york = timezone(timedelta(hours=-5))
    assert utc_day(datetime(2026, 3, 1, 21, 0, tzinfo=new_york)) == date(2026, 3, 2)
    assert utc_day(datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == date(2026, 3, 1)


# ---- the rule table, pure


def test_the_rule_table_has_the_promised_achievements():
    assert [rule.code for rule in RULES] == [
        "first_lesson",
        "first_course",
        "streak_3",
        "streak_7",
        "streak_30",
        "five_courses",
    ]
    assert all(rule.title and rule.description for rule in RULES)


EARNED = {
    "nothing yet": ((0, 0, 0), []),
    "a first lesson": ((1, 0, 1), ["first_lesson"]),
    "a first course": ((3, 1, 1), ["first_lesson", "first_course"]),
    "two days in a row": ((2, 0, 2), ["first_lesson"]),
    "three days in a row": ((2, 0, 3), ["first_lesson", "streak_3"]),
    "a week": ((9, 0, 7), ["first_lesson", "streak_3", "streak_7"]),
    "a month": ((9, 0, 30), ["first_lesson", "streak_3", "streak_7", "streak_30"]),
    "four courses": ((9, 4, 1), ["first_lesson", "first_course"]),
    "five courses": ((9, 5, 1), ["first_lesson", "first_course", "five_courses"]),
}


@pytest.mark.parametrize(("stats", "expected"), EARNED.values(), ids=EARNED.keys())
def test_earned(stats, expected):
    assert [rule.code for rule in earned(LearnerStats(*stats))] == expected


def test_verification_codes_are_long_random_and_readable():
    made = {verification_code() for _ in range(1000)}
    assert len(made) == 1000
    assert all(re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){5}", code) for code in made)


# ---- acceptance 2: streaks across days, through the tools


async def test_activity_on_days_1_2_3_5_gives_current_1_and_longest_3(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        learner = await new_learner(client, lessons=5)
        unlocked = {}
        for day, lesson in zip((1, 2, 3, 5), learner.lesson_ids, strict=False):
            clock.now = datetime.combine(_days(day)[0], datetime.min.time(), UTC) + timedelta(hours=9)
            unlocked[day] = codes(await progress(client, learner.enrollment_id, lesson))
        enrollment = (await call(client, "get_enrollment", enrollmentId=learner.enrollment_id))["enrollment"]
        student = (await call(client, "get_student", studentId=learner.student_id))["student"]
        clock.advance(days=1)
        next_day = (await call(client, "get_student", studentId=learner.student_id))["student"]
        clock.advance(days=1)
        two_days_later = (await call(client, "get_student", studentId=learner.student_id))["student"]
    assert unlocked == {1: ["first_lesson"], 2: [], 3: ["streak_3"], 5: []}
    assert enrollment["streak"] == student["streak"] == next_day["streak"] == {"current": 1, "longest": 3}
    assert two_days_later["streak"] == {"current": 0, "longest": 3}
    assert (await table_counts(store))["learning_days"] == 4


async def test_updates_just_before_and_after_midnight_utc_are_two_days(store, tenant):
    clock = Clock(datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    async with mcp_client(store, tenant.key, clock=clock) as client:
        learner = await new_learner(client)
        await progress(client, learner.enrollment_id, learner.lesson_ids[0])
        clock.advance(hours=1)
        await progress(
            client, learner.enrollment_id, learner.lesson_ids[1], completed=False, watchedSeconds=5
        )
        student = (await call(client, "get_student", studentId=learner.student_id))["student"]
    assert student["streak"] == {"current": 2, "longest": 2}


async def test_many_updates_in_one_day_log_one_learning_day(store, tenant):
    async with mcp_client(store, tenant.key, clock=Clock()) as client:
        learner = await new_learner(client)
        for lesson in learner.lesson_ids:
            await progress(client, learner.enrollment_id, lesson, completed=False, watchedSeconds=10)
    assert (await table_counts(store))["learning_days"] == 1


async def test_an_update_that_records_no_learning_logs_no_day(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client)
        result = await progress(client, learner.enrollment_id, learner.lesson_ids[0], completed=False)
        student = (await call(client, "get_student", studentId=learner.student_id))["student"]
    assert result["events"] == {"newAchievements": [], "certificateIssued": None}
    assert student["streak"] == {"current": 0, "longest": 0}
    assert (await table_counts(store))["learning_days"] == 0


async def test_a_30_day_streak_unlocks_streak_30_once(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        learner = await new_learner(client)
        today = utc_day(clock.now)
        earlier = [{"student_id": learner.student_id, "day": today - timedelta(days=n)} for n in range(1, 30)]
        async with store.writing() as db:
            await db.session.execute(insert(LearningDay), earlier)
        first = await progress(
            client, learner.enrollment_id, learner.lesson_ids[0], completed=False, watchedSeconds=1
        )
        again = await progress(
            client, learner.enrollment_id, learner.lesson_ids[0], completed=False, watchedSeconds=2
        )
    assert codes(first) == ["streak_3", "streak_7", "streak_30"]
    assert codes(again) == []


# ---- achievements across courses


async def test_five_completed_courses_unlock_first_course_then_five_courses(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student_id = await new_student(client)
        unlocked = []
        for _ in range(5):
            learner = await new_learner(client, lessons=1, student_id=student_id)
            unlocked.append(codes(await progress(client, learner.enrollment_id, learner.lesson_ids[0])))
        listed = await call(client, "list_achievements", studentId=student_id)
    assert unlocked == [["first_lesson", "first_course"], [], [], [], ["five_courses"]]
    assert sorted(a["code"] for a in listed["data"]) == ["first_course", "first_lesson", "five_courses"]


async def test_list_achievements_is_newest_first_with_titles(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        learner = await new_learner(client, lessons=3)
        for lesson in learner.lesson_ids:
            await progress(client, learner.enrollment_id, lesson)
            clock.advance(days=1)
        listed = await call(client, "list_achievements", studentId=learner.student_id)
        page = await call(client, "list_achievements", studentId=learner.student_id, limit=1, page=2)
    assert [(a["code"], a["unlockedAt"][:10]) for a in listed["data"]] == [
        ("first_course", "2026-03-18"),
        ("streak_3", "2026-03-18"),
        ("first_lesson", "2026-03-16"),
    ]
    assert listed["data"][0] == {
        "code": "first_course",
        "title": "First course",
        "description": "Completed a first course.",
        "studentName": "Jane Smith",
        "unlockedAt": "2026-03-18T10:00:00.000Z",
    }
    assert page["data"] == [listed["data"][1]]
    assert page["pagination"]["total"] == 3


async def test_an_achievement_row_is_inserted_once_whatever_the_callers_believe(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student_id = await new_student(client)
    row = {"student_id": student_id, "code": "first_lesson", "unlocked_at": datetime.now(UTC)}
    async with store.writing() as db:
        first = await insert_new(db, Achievement, [row])
        second = await insert_new(db, Achievement, [row, {**row, "code": "streak_3"}])
    assert [tuple(r) for r in first] == [(student_id, "first_lesson")]
    assert [tuple(r) for r in second] == [(student_id, "streak_3")]


# ---- certificates


async def test_adding_a_lesson_later_lowers_the_percent_but_keeps_the_certificate(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        learner = await new_learner(client, lessons=2)
        for lesson in learner.lesson_ids:
            done = await progress(client, learner.enrollment_id, lesson)
        course = (await call(client, "get_course", courseId=learner.course_id))["course"]
        added = await make_lesson(client, course["sections"][0], "Bonus")
        lowered = (await call(client, "get_enrollment", enrollmentId=learner.enrollment_id))["enrollment"]
        completed_again = await progress(client, learner.enrollment_id, added["id"])
        certificates = await call(client, "list_certificates", courseId=learner.course_id)
    certificate = done["events"]["certificateIssued"]
    assert lowered["progress"] == {"completedLessons": 2, "totalLessons": 3, "percent": 67}
    assert lowered["completedAt"] == certificate["issuedAt"]
    assert completed_again["enrollment"]["progress"]["percent"] == 100
    assert completed_again["events"] == {"newAchievements": [], "certificateIssued": None}
    assert completed_again["enrollment"]["completedAt"] == certificate["issuedAt"]
    assert certificates["data"] == [certificate]


async def test_list_certificates_filters_by_student_and_course(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        ann = await new_learner(client, lessons=1)
        bob = await new_learner(client, lessons=1)
        ann_second = await new_learner(client, lessons=1, student_id=ann.student_id)
        for learner in (ann, bob, ann_second):
            await progress(client, learner.enrollment_id, learner.lesson_ids[0])
        by_ann = await call(client, "list_certificates", studentId=ann.student_id)
        by_course = await call(client, "list_certificates", courseId=bob.course_id)
        both = await call(client, "list_certificates", studentId=ann.student_id, courseId=bob.course_id)
        everything = await call(client, "list_certificates")
    assert [c["enrollmentId"] for c in by_ann["data"]] == [ann_second.enrollment_id, ann.enrollment_id]
    assert [c["enrollmentId"] for c in by_course["data"]] == [bob.enrollment_id]
    assert both["data"] == []
    assert everything["pagination"]["total"] == 3
    assert len({c["verificationCode"] for c in everything["data"]}) == 3
