"""Insights for a school's owner, one call each: `get_course_insights` (one course's figures and
lesson funnel) and `get_school_report` (a period against the one before it).

Every figure is counted by the store (`storage.insights`) in a fixed number of statements; the
clock is `ctx.now()`. The report's parts each need their own read permission: the operation is
listed to a key holding any of them and answers only the parts the key may read, naming the
others in `omitted`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal

from pydantic import Field

from storage import insights as insights_storage
from storage.insights import Window
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import NotFound, Unprocessable
from tools.core.fields import IsoDate
from tools.core.models import InputModel, OutputModel, UtcDatetime
from tools.core.permissions import AllOf, AnyOf, Permission, allows
from tools.domains.curriculum import CourseRef
from tools.domains.streaks import utc_day

__all__ = ["get_course_insights", "get_school_report"]


# ---- get_course_insights


class ActiveWindow(OutputModel):
    since: UtcDatetime = Field(description="Midnight (UTC) starting the window's first day.")
    until: UtcDatetime = Field(description="The time of the answer.")
    learners: int = Field(
        description="Enrolled students with lesson progress whose last progress update on this course fell in the window."
    )


class FunnelStep(OutputModel):
    position: int = Field(description="1-based, in curriculum order (section order, then lesson order).")
    lesson_id: str
    lesson_title: str
    section_id: str
    section_title: str
    started: int = Field(description="Enrolled students with any progress recorded on the lesson.")
    completed: int = Field(description="Enrolled students who completed the lesson.")
    completion_rate: float = Field(description="completed / the course's enrollments, 0 without enrollments.")
    average_watched_seconds: float | None = Field(
        description="Average watched seconds of the students who started it; null when none did."
    )


class LargestDrop(OutputModel):
    """The lesson whose completions fall furthest below the previous lesson's."""

    lesson_id: str
    lesson_title: str
    position: int
    previous_lesson_id: str
    previous_lesson_title: str
    lost: int = Field(description="The previous lesson's completions minus this lesson's.")
    lost_percent: float = Field(description="lost / the previous lesson's completions * 100.")


class CourseInsights(OutputModel):
    course_id: str
    course_title: str
    as_of: UtcDatetime = Field(description="When the figures were counted.")
    enrollments: int = Field(description="All enrollments in the course, ever.")
    completed: int = Field(description="Enrollments that reached 100%.")
    completion_rate: float = Field(description="completed / enrollments, 0 without enrollments.")
    certificates: int = Field(description="Certificates issued for this course.")
    average_days_to_complete: float | None = Field(
        description="Average days from enrolling to completing, over completed enrollments; null when none."
    )
    active_last_7_days: ActiveWindow
    active_last_30_days: ActiveWindow
    funnel: list[FunnelStep] = Field(description="Every lesson, in curriculum order.")
    largest_drop: LargestDrop | None = Field(
        description="The lesson losing most completions from the previous one; null when none loses any."
    )


class CourseInsightsResult(OutputModel):
    insights: CourseInsights


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _largest_drop(steps: list[FunnelStep]) -> LargestDrop | None:
    best: LargestDrop | None = None
    for previous, step in pairwise(steps):
        lost = previous.completed - step.completed
        if lost > 0 and (best is None or lost > best.lost):
            best = LargestDrop(
                lesson_id=step.lesson_id,
                lesson_title=step.lesson_title,
                position=step.position,
                previous_lesson_id=previous.lesson_id,
                previous_lesson_title=previous.lesson_title,
                lost=lost,
                lost_percent=round(lost / previous.completed * 100, 1),
            )
    return best


@operation(
    title="Course insights",
    permission=AllOf(Permission.COURSES_READ, Permission.ENROLLMENTS_READ),
    http=("GET", "/courses/{courseId}/insights"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def get_course_insights(ctx: OperationContext, data: CourseRef) -> CourseInsightsResult:
    """A course's enrollments, completion, certificates, days to complete, learners active in 7/30
    days, lesson funnel, largest drop."""
    now = ctx.now()
    today = utc_day(now)
    summary = await insights_storage.course_summary(
        ctx.db, producer_id=ctx.producer_id, course_id=data.course_id, today=today
    )
    if summary is None:
        raise NotFound("Course not found")
    lessons = await insights_storage.course_funnel(
        ctx.db, producer_id=ctx.producer_id, course_id=data.course_id
    )
    steps = [
        FunnelStep(
            position=position,
            lesson_id=lesson.lesson_id,
            lesson_title=lesson.title,
            section_id=lesson.section_id,
            section_title=lesson.section_title,
            started=lesson.started,
            completed=lesson.completed,
            completion_rate=_rate(lesson.completed, summary.enrollments),
            average_watched_seconds=(
                None if lesson.average_watched_seconds is None else round(lesson.average_watched_seconds, 1)
            ),
        )
        for position, lesson in enumerate(lessons, start=1)
    ]
    average = summary.average_days_to_complete
    return CourseInsightsResult(
        insights=CourseInsights(
            course_id=data.course_id,
            course_title=summary.title,
            as_of=now,
            enrollments=summary.enrollments,
            completed=summary.completed,
            completion_rate=_rate(summary.completed, summary.enrollments),
            certificates=summary.certificates,
            average_days_to_complete=None if average is None else round(average, 2),
            active_last_7_days=ActiveWindow(
                since=_midnight(today - timedelta(days=6)), until=now, learners=summary.active_7_days
            ),
            active_last_30_days=ActiveWindow(
                since=_midnight(today - timedelta(days=29)), until=now, learners=summary.active_30_days
            ),
            funnel=steps,
            largest_drop=_largest_drop(steps),
        )
    )


# ---- get_school_report


class SchoolReportInput(InputModel):
    since: IsoDate | None = Field(default=None, description="First UTC day; default: until - 6 days.")
    until: IsoDate | None = Field(default=None, description="Last UTC day; default: today.")


class ReportPeriod(OutputModel):
    since: UtcDatetime = Field(description="Midnight (UTC) starting the first day.")
    until: UtcDatetime = Field(description="Exclusive: midnight ending the last day.")


class Change(OutputModel):
    value: int = Field(description="In the period.")
    previous: int = Field(description="In the previous period.")
    change_percent: float | None = Field(
        description="(value - previous) / previous * 100, rounded to 0.1; null when previous is 0."
    )


class StudentsPart(OutputModel):
    new_students: Change = Field(description="Students registered.")


class LearningPart(OutputModel):
    enrollments: Change = Field(description="Enrollments made.")
    lessons_completed: Change = Field(description="Lessons first completed.")
    courses_completed: Change = Field(description="Enrollments that reached 100%.")
    certificates: Change = Field(description="Certificates issued.")
    active_learners: Change = Field(
        description="Distinct students who recorded learning (a learning day) on a day of the period."
    )


class CommunityPart(OutputModel):
    new_threads: Change = Field(description="Threads created in the producer's communities.")
    new_comments: Change = Field(description="Comments and replies created.")


class OmittedPart(OutputModel):
    part: Literal["students", "learning", "community"]
    reason: str = Field(description="The permission the key lacks for it.")


class SchoolReport(OutputModel):
    period: ReportPeriod
    previous_period: ReportPeriod = Field(description="As long as the period, ending where it begins.")
    students: StudentsPart | None = Field(description="Needs students:read; null without it.")
    learning: LearningPart | None = Field(description="Needs enrollments:read; null without it.")
    community: CommunityPart | None = Field(description="Needs communities:read; null without it.")
    omitted: list[OmittedPart] = Field(description="The parts left out, and why.")


class SchoolReportResult(OutputModel):
    report: SchoolReport


_LONGEST_PERIOD = 366
"""Days a report may span: each of its sums reads a row a day (`SchoolDay`, `LearningGap`)."""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _window(first_day: date, days: int) -> Window:
    end_day = first_day + timedelta(days=days)
    return Window(since=_midnight(first_day), until=_midnight(end_day), first_day=first_day, end_day=end_day)


def _change(pair: tuple[int, int]) -> Change:
    value, previous = pair
    percent = round((value - previous) / previous * 100, 1) if previous else None
    return Change(value=value, previous=previous, change_percent=percent)


_PARTS: tuple[tuple[Literal["students", "learning", "community"], Permission], ...] = (
    ("students", Permission.STUDENTS_READ),
    ("learning", Permission.ENROLLMENTS_READ),
    ("community", Permission.COMMUNITIES_READ),
)


@operation(
    title="School report",
    permission=AnyOf(Permission.STUDENTS_READ, Permission.ENROLLMENTS_READ, Permission.COMMUNITIES_READ),
    http=("GET", "/school/report"),
    kind="read",
    input_rules=("since is not after until; a period spans at most 366 days.",),
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def get_school_report(ctx: OperationContext, data: SchoolReportInput) -> SchoolReportResult:
    """Whole UTC days since..until vs as many before, % change: students, enrollments, lessons and
    courses completed, certificates, active learners, threads, comments. Unreadable parts null (omitted)."""
    if data.since is None:
        last_day = data.until or utc_day(ctx.now())
        first_day = last_day - timedelta(days=6)
    else:
        first_day, last_day = data.since, data.until or max(utc_day(ctx.now()), data.since)
    days = (last_day - first_day).days + 1
    if days < 1:
        raise Unprocessable("Invalid input: since, until: since must not be after until")
    if days > _LONGEST_PERIOD:
        raise Unprocessable(f"Invalid input: since, until: a period spans at most {_LONGEST_PERIOD} days")
    if first_day - date.min < timedelta(days=days) or date.max - last_day < timedelta(days=1):
        raise Unprocessable(
            "Invalid input: since, until: the period and the one before it must lie within years 1-9999"
        )
    current, previous = _window(first_day, days), _window(first_day - timedelta(days=days), days)
    grants = ctx.principal.grants
    readable = {part: allows(grants, permission) for part, permission in _PARTS}
    scope = {"producer_id": ctx.producer_id, "current": current, "previous": previous}
    students = learning = community = None
    if readable["students"]:
        counts = await insights_storage.student_counts(ctx.db, **scope)
        students = StudentsPart(new_students=_change(counts["new_students"]))
    if readable["learning"]:
        counts = await insights_storage.learning_counts(ctx.db, **scope)
        learning = LearningPart(**{name: _change(pair) for name, pair in counts.items()})
    if readable["community"]:
        counts = await insights_storage.community_counts(ctx.db, **scope)
        community = CommunityPart(**{name: _change(pair) for name, pair in counts.items()})
    return SchoolReportResult(
        report=SchoolReport(
            period=ReportPeriod(since=current.since, until=current.until),
            previous_period=ReportPeriod(since=previous.since, until=previous.until),
            students=students,
            learning=learning,
            community=community,
            omitted=[
                OmittedPart(part=part, reason=f"This API key lacks the {permission} permission")
                for part, permission in _PARTS
                if not readable[part]
            ],
        )
    )
