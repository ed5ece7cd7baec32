"""Achievements and certificates: the rule table, what a progress update unlocks, and the list tools.

A progress update (`tools.domains.enrollments.update_progress`) calls `record_progress` in its own
transaction. It logs the UTC day as a learning day, issues the enrollment's certificate the
first time it reaches 100%, and unlocks every achievement whose rule now holds. Each of these
is an insert the database refuses to repeat (primary key or unique constraint, ON CONFLICT DO
NOTHING), so a lost race or a repeated call unlocks or issues nothing twice.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from pydantic import Field

from storage import enrollments as enrollments_storage
from storage.enrollments import EnrollmentNames, EnrollmentRow, ProgressState
from storage.tables import Achievement, Certificate
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.models import OutputModel, Page, PageQuery, UtcDatetime
from tools.core.paging import paged
from tools.core.permissions import Permission
from tools.domains.curriculum import owned_course
from tools.domains.streaks import streaks, utc_day
from tools.domains.students import owned_student

__all__ = [
    "RULES",
    "AchievementPublic",
    "CertificatePublic",
    "EnrollmentFilter",
    "LearnerStats",
    "ProgressEvents",
    "Rule",
    "check_filter",
    "earned",
    "list_achievements",
    "list_certificates",
    "record_progress",
    "verification_code",
]


@dataclass(frozen=True)
class LearnerStats:
    """What the achievement rules look at, for one student."""

    completed_lessons: int
    completed_courses: int
    longest_streak: int


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    description: str
    holds: Callable[[LearnerStats], bool]


# Codes are stored with each unlock: never rename or remove one.
RULES: tuple[Rule, ...] = (
    Rule("first_lesson", "First lesson", "Completed a first lesson.", lambda s: s.completed_lessons >= 1),
    Rule("first_course", "First course", "Completed a first course.", lambda s: s.completed_courses >= 1),
    Rule("streak_3", "3-day streak", "Made progress on 3 days in a row.", lambda s: s.longest_streak >= 3),
    Rule("streak_7", "7-day streak", "Made progress on 7 days in a row.", lambda s: s.longest_streak >= 7),
    Rule(
        "streak_30", "30-day streak", "Made progress on 30 days in a row.", lambda s: s.longest_streak >= 30
    ),
    Rule("five_courses", "Five courses", "Completed five courses.", lambda s: s.completed_courses >= 5),
)
_RULES_BY_CODE = {rule.code: rule for rule in RULES}


def earned(stats: LearnerStats) -> list[Rule]:
    """The rules that hold for `stats`, in table order (unlocked or not)."""
    return [rule for rule in RULES if rule.holds(stats)]


def verification_code() -> str:
    """A certificate's verification code: 120 random bits as 24 base32 characters in groups of
    four (`K7Q2-...`), unguessable and easy to read out."""
    text = base64.b32encode(secrets.token_bytes(15)).decode()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


# ---- wire models


class AchievementPublic(OutputModel):
    code: str = Field(
        description="first_lesson, first_course, streak_3, streak_7, streak_30 or five_courses."
    )
    title: str
    description: str
    student_name: str
    unlocked_at: UtcDatetime


class CertificatePublic(OutputModel):
    id: str
    student_id: str
    student_name: str
    course_id: str
    course_title: str
    enrollment_id: str
    verification_code: str
    issued_at: UtcDatetime


class ProgressEvents(OutputModel):
    new_achievements: list[AchievementPublic] = Field(description="Unlocked by this update.")
    certificate_issued: CertificatePublic | None = Field(
        description="Set when this update completed the course."
    )


class EnrollmentFilter(PageQuery):
    # list_enrollments' and list_certificates' arguments. No docstring: it would land in their schemas.
    student_id: str | None = Field(default=None, max_length=100)
    course_id: str | None = Field(default=None, max_length=100)


class ListAchievementsInput(PageQuery):
    student_id: str = Field(max_length=100)


async def check_filter(ctx: OperationContext, data: EnrollmentFilter) -> None:
    """A filter naming another producer's (or no) student or course is not_found, like a direct get."""
    if data.student_id is not None:
        await owned_student(ctx, data.student_id)
    if data.course_id is not None:
        await owned_course(ctx, data.course_id)


def _achievement_public(code: str, unlocked_at: datetime, student_name: str) -> AchievementPublic:
    rule = _RULES_BY_CODE[code]
    return AchievementPublic(
        code=code,
        title=rule.title,
        description=rule.description,
        student_name=student_name,
        unlocked_at=unlocked_at,
    )


def _unlocked_public(student_name: str, row: Achievement) -> AchievementPublic:
    return _achievement_public(row.code, row.unlocked_at, student_name)


async def _certificates_public(ctx: OperationContext, rows: list[Certificate]) -> list[CertificatePublic]:
    """The page's certificates with their students' and courses' names: one statement for the page."""
    summaries = await enrollments_storage.enrollment_summaries(
        ctx.db, enrollment_ids=[row.enrollment_id for row in rows]
    )
    return [
        certificate_public(
            row, student_id=summary.student_id, course_id=summary.course_id, names=summary.names
        )
        for row in rows
        for summary in [summaries[row.enrollment_id]]
    ]


def certificate_public(
    row: Certificate, *, student_id: str, course_id: str, names: EnrollmentNames
) -> CertificatePublic:
    return CertificatePublic(
        id=row.id,
        student_id=student_id,
        student_name=names.student_name,
        course_id=course_id,
        course_title=names.course_title,
        enrollment_id=row.enrollment_id,
        verification_code=row.verification_code,
        issued_at=row.issued_at,
    )


# ---- the side effects of a progress update


async def _issue_certificate(
    ctx: OperationContext, enrollment: EnrollmentRow, names: EnrollmentNames, now: datetime
) -> CertificatePublic | None:
    row = await enrollments_storage.issue_certificate(
        ctx.db, enrollment_id=enrollment.id, verification_code=verification_code(), at=now
    )
    if row is None:
        return None  # the enrollment already has one
    return certificate_public(
        row, student_id=enrollment.student_id, course_id=enrollment.course_id, names=names
    )


async def _unlock(
    ctx: OperationContext, stats: LearnerStats, state: ProgressState, now: datetime
) -> list[AchievementPublic]:
    """Unlock each achievement whose rule holds for `stats` and the student has not unlocked yet
    (no statement when there is none)."""
    student_id = state.enrollment.student_id
    rules = [rule for rule in earned(stats) if rule.code not in state.achievements]
    unlocked = await enrollments_storage.unlock_achievements(
        ctx.db, student_id=student_id, codes=[rule.code for rule in rules], at=now
    )
    return [
        _achievement_public(rule.code, now, state.names.student_name)
        for rule in rules
        if rule.code in unlocked
    ]


async def record_progress(
    ctx: OperationContext,
    state: ProgressState,
    *,
    learned: bool,
    lesson_completed: bool,
    course_complete: bool,
) -> ProgressEvents:
    """The side effects of a progress update, in its transaction; `state` is what the update read
    before it wrote, the enrollment and its student held (`storage.enrollments.progress_state`),
    so its counts plus this update's own changes are the student's counts now.

    `learned` logs today as a learning day; `course_complete` marks the enrollment completed (a
    change: `updated_at` moves) and issues its certificate, the first time only; then every
    achievement whose rule now holds is unlocked, once. Nothing already true is written again."""
    now = ctx.now()
    enrollment = state.enrollment
    certificate = None
    course_completed_now = course_complete and enrollment.completed_at is None
    if course_completed_now:
        enrollment.completed_at = enrollment.updated_at = now
        certificate = await _issue_certificate(ctx, enrollment, state.names, now)
    today, days = utc_day(now), state.learning_days
    if learned and today not in days:
        await enrollments_storage.log_learning_day(ctx.db, student_id=enrollment.student_id, day=today)
        days = sorted({*days, today})
    stats = LearnerStats(
        completed_lessons=state.student_completed_lessons + lesson_completed,
        completed_courses=state.student_completed_courses + course_completed_now,
        longest_streak=streaks(days, today=today).longest,
    )
    achievements = await _unlock(ctx, stats, state, now)
    return ProgressEvents(new_achievements=achievements, certificate_issued=certificate)


# ---- operations


@operation(
    title="List certificates",
    permission=Permission.ENROLLMENTS_READ,
    http=("GET", "/certificates"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def list_certificates(ctx: OperationContext, data: EnrollmentFilter) -> Page[CertificatePublic]:
    """Course-completion certificates, newest first."""
    await check_filter(ctx, data)
    statement = enrollments_storage.certificates_query(
        producer_id=ctx.producer_id, student_id=data.student_id, course_id=data.course_id
    )
    return await paged(ctx.db, statement, query=data, convert_page=partial(_certificates_public, ctx))


@operation(
    title="List achievements",
    permission=Permission.ENROLLMENTS_READ,
    http=("GET", "/achievements"),
    kind="read",
)
async def list_achievements(ctx: OperationContext, data: ListAchievementsInput) -> Page[AchievementPublic]:
    """A student's unlocked achievements, newest first."""
    student = await owned_student(ctx, data.student_id)
    statement = enrollments_storage.achievements_query(student_id=student.id)
    return await paged(ctx.db, statement, query=data, convert=partial(_unlocked_public, student.name))
