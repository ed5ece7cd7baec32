"""Learning streaks: runs of consecutive UTC days on which a student recorded progress.

`update_progress` logs the day (one row per student per day); streaks are derived from
those days, never stored. Kept apart from `tools.domains.achievements` so that `get_student` can
show a streak without the students module depending on the achievements module (which
itself looks students up).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from pydantic import Field

from storage import enrollments as enrollments_storage
from tools.core.context import OperationContext
from tools.core.models import OutputModel

__all__ = ["Streak", "streak_of", "streaks", "utc_day"]


class Streak(OutputModel):
    current: int = Field(
        description="Consecutive days with progress ending today, or yesterday if none yet today."
    )
    longest: int = Field(description="Longest run of consecutive days with progress.")


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of `moment` (a naive datetime is taken as UTC)."""
    return moment.astimezone(UTC).date() if moment.tzinfo is not None else moment.date()


def streaks(days: Iterable[date], *, today: date) -> Streak:
    """The current and longest streak in `days` as seen on `today` (later days are ignored).

    The current streak is the run ending today, or ending yesterday (today is not over yet);
    otherwise 0. Days 1, 2, 3 and 5 seen on day 5: current 1, longest 3; on day 7: current 0.
    """
    longest = run = 0
    last: date | None = None
    for day in sorted({day for day in days if day <= today}):
        run = run + 1 if last is not None and day - last == timedelta(days=1) else 1
        longest = max(longest, run)
        last = day
    current = run if last is not None and today - last <= timedelta(days=1) else 0
    return Streak(current=current, longest=longest)


async def streak_of(ctx: OperationContext, student_id: str) -> Streak:
    """The student's streak as of the operation's clock."""
    days = await enrollments_storage.learning_days(ctx.db, student_id=student_id)
    return streaks(days, today=utc_day(ctx.now()))
