"""The school at a glance: `get_school_overview`, read by the Producer Dashboard's Overview page."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import Field

from storage import overview as overview_storage
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.models import InputModel, OutputModel

__all__ = ["SchoolOverviewResult", "get_school_overview"]

_MAX_COURSES = 10


class OverviewInput(InputModel):
    days: int = Field(default=30, ge=7, le=90, description="How many days of activity, ending today (UTC).")


class SchoolCountsPublic(OutputModel):
    students: int
    published_courses: int
    draft_courses: int
    active_enrollments: int = Field(description="Enrollments not yet completed.")
    completed_enrollments: int
    certificates: int
    communities: int


class ActivityDay(OutputModel):
    day: date
    lessons_completed: int
    active_learners: int = Field(description="Students who completed a lesson that day.")


class CourseCompletionPublic(OutputModel):
    course_id: str
    title: str
    published: bool
    enrollments: int
    completed: int
    completion_rate: float = Field(description="completed / enrollments, 0 without enrollments.")


class SchoolOverview(OutputModel):
    counts: SchoolCountsPublic
    activity: list[ActivityDay] = Field(description="One entry per day, oldest first.")
    courses: list[CourseCompletionPublic] = Field(
        description=f"The {_MAX_COURSES} courses with most enrollments."
    )


class SchoolOverviewResult(OutputModel):
    overview: SchoolOverview


@operation(
    title="School overview",
    name="get_school_overview",
    permission=None,
    http=None,
    kind="read",
    auth=("session",),
    transports=("dashboard",),
)
async def get_school_overview(ctx: OperationContext, data: OverviewInput) -> SchoolOverviewResult:
    """The producer's school at a glance: counts of students, courses, enrollments, certificates and
    communities; lessons completed and active learners per day; completion rate of the top courses."""
    today = ctx.now().astimezone(UTC).date()
    first = today - timedelta(days=data.days - 1)
    counts = await overview_storage.school_counts(ctx.db, producer_id=ctx.producer_id)
    since = datetime.combine(first, time.min, tzinfo=UTC)
    lessons = await overview_storage.lessons_completed_by_day(
        ctx.db, producer_id=ctx.producer_id, since=since
    )
    learners = await overview_storage.active_learners_by_day(ctx.db, producer_id=ctx.producer_id, since=first)
    days = [first + timedelta(days=offset) for offset in range(data.days)]
    courses = await overview_storage.course_completions(
        ctx.db, producer_id=ctx.producer_id, limit=_MAX_COURSES
    )
    return SchoolOverviewResult(
        overview=SchoolOverview(
            counts=SchoolCountsPublic(**vars(counts)),
            activity=[
                ActivityDay(
                    day=day, lessons_completed=lessons.get(day, 0), active_learners=learners.get(day, 0)
                )
                for day in days
            ],
            courses=[
                CourseCompletionPublic(
                    **vars(course),
                    completion_rate=course.completed / course.enrollments if course.enrollments else 0.0,
                )
                for course in courses
            ],
        )
    )
