"""A community's activity: `get_community_insights`, over the last `days` whole UTC days.

The window is [since, until): since is midnight (UTC) `days - 1` days before today, until the
midnight after today, so today counts so far. Threads waiting for an answer are any of the
community's threads, of any age, at least `hours` old that no one but their author has
commented on. The most active posters are counted over all time: ranking the window's posters
would read every post of the window, where every other figure is a sum over the window's days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import Field

from storage import community_insights as insights_storage
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.fields import Id
from tools.core.models import InputModel, OutputModel, UtcDatetime
from tools.core.permissions import Permission
from tools.domains.communities import community_row

__all__ = ["get_community_insights"]

_MOST_ACTIVE = 5
_WAITING = 20


class CommunityInsightsInput(InputModel):
    community_id: Id
    days: int = Field(default=7, ge=1, le=90)
    hours: int = Field(default=24, ge=1, le=8760)


class CommunityPeriod(OutputModel):
    since: UtcDatetime
    until: UtcDatetime = Field(description="Exclusive: the midnight after today.")


class DayActivity(OutputModel):
    day: date
    threads: int
    comments: int


class ActivePoster(OutputModel):
    user_id: str
    name: str
    threads: int
    comments: int
    posts: int = Field(description="threads + comments.")


class WaitingThreadPublic(OutputModel):
    id: str
    title: str
    author_id: str
    author_name: str
    created_at: UtcDatetime
    comment_count: int = Field(description="All by its author.")


class CommunityInsights(OutputModel):
    community_id: str
    community_name: str
    period: CommunityPeriod = Field(description="The window of every count below but members and waiting.")
    members: int = Field(description="Members now.")
    new_members: int = Field(description="Joined in the period (and still members).")
    threads: int = Field(description="Made in the period (and not deleted); comments likewise.")
    comments: int
    by_day: list[DayActivity] = Field(description="Every day of the period, oldest first.")
    most_active: list[ActivePoster] = Field(
        description=f"Top {_MOST_ACTIVE} by posts ever in the community, member or not."
    )
    waiting_since: UtcDatetime = Field(description="Now - hours.")
    waiting_total: int = Field(
        description="Threads made at or before waitingSince with no comment from anyone but their author."
    )
    waiting: list[WaitingThreadPublic] = Field(description=f"The oldest {_WAITING} of them, oldest first.")


class CommunityInsightsResult(OutputModel):
    insights: CommunityInsights


@operation(
    title="Community insights",
    permission=Permission.COMMUNITIES_READ,
    http=("GET", "/communities/{communityId}/insights"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def get_community_insights(
    ctx: OperationContext, data: CommunityInsightsInput
) -> CommunityInsightsResult:
    """A community's last `days` UTC days: members, joins, daily posts, top posters, threads
    unanswered after `hours`."""
    community = await community_row(ctx, data.community_id)
    now = ctx.now()
    first = now.astimezone(UTC).date() - timedelta(days=data.days - 1)
    days = [first + timedelta(days=offset) for offset in range(data.days)]
    boundaries = [
        datetime.combine(day, time.min, tzinfo=UTC) for day in [*days, days[-1] + timedelta(days=1)]
    ]
    since, until = boundaries[0], boundaries[-1]
    window = {"first_day": days[0], "end_day": days[-1] + timedelta(days=1)}
    asked_before = now - timedelta(hours=data.hours)
    counts = await insights_storage.community_counts(
        ctx.db, community_id=community.id, asked_before=asked_before, **window
    )
    threads, comments = await insights_storage.posts_by_day(ctx.db, community_id=community.id, **window)
    posters = await insights_storage.most_active(ctx.db, community_id=community.id, limit=_MOST_ACTIVE)
    waiting = await insights_storage.waiting_threads(
        ctx.db, community_id=community.id, asked_before=asked_before, limit=_WAITING
    )
    return CommunityInsightsResult(
        insights=CommunityInsights(
            community_id=community.id,
            community_name=community.name,
            period=CommunityPeriod(since=since, until=until),
            members=counts.members,
            new_members=counts.new_members,
            threads=counts.threads,
            comments=counts.comments,
            by_day=[
                DayActivity(day=day, threads=threads[index], comments=comments[index])
                for index, day in enumerate(days)
            ],
            most_active=[
                ActivePoster(
                    user_id=poster.user_id,
                    name=poster.name,
                    threads=poster.threads,
                    comments=poster.comments,
                    posts=poster.threads + poster.comments,
                )
                for poster in posters
            ],
            waiting_since=asked_before,
            waiting_total=counts.waiting_threads,
            waiting=[WaitingThreadPublic(**vars(thread)) for thread in waiting],
        )
    )
