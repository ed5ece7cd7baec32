"""A community's activity over a window, in the store: members, posts per day, the most active
posters, and the threads waiting for an answer.

Read by `get_community_insights`. Nothing here counts rows: members, new members, threads and
comments are sums over the community's days (`CommunityDay`, a row per day), the posters are the
first rows of `CommunityPoster` in the order of its index, and the waiting threads the oldest rows
of `UnansweredThread` (all kept by the database's triggers, migration 0017). Four statements,
however large the community: the counts, the posts per day, the most active posters, the waiting
threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import col

from storage.db import Db
from storage.queries import count_where
from storage.tables import CommunityDay, CommunityPoster, Thread, UnansweredThread, User

__all__ = [
    "CommunityCounts",
    "Poster",
    "WaitingThread",
    "community_counts",
    "most_active",
    "posts_by_day",
    "waiting_threads",
]


@dataclass(frozen=True)
class CommunityCounts:
    members: int
    new_members: int
    threads: int
    comments: int
    waiting_threads: int


@dataclass(frozen=True)
class Poster:
    user_id: str
    name: str
    threads: int
    comments: int


@dataclass(frozen=True)
class WaitingThread:
    id: str
    title: str
    author_id: str
    author_name: str
    created_at: datetime
    comment_count: int


def _waiting(community_id: str, *, asked_before: datetime) -> tuple:
    """The community's threads created at or before `asked_before` that no one but their author
    has commented on."""
    return (
        col(UnansweredThread.community_id) == community_id,
        col(UnansweredThread.created_at) <= asked_before,
    )


async def community_counts(
    db: Db, *, community_id: str, first_day: date, end_day: date, asked_before: datetime
) -> CommunityCounts:
    """Members now; members who joined, threads and comments made in the days [first_day, end_day)
    (and still there); threads waiting for an answer (see `_waiting`). One statement."""
    session = db.session
    of_community = col(CommunityDay.community_id) == community_id
    in_window = (col(CommunityDay.day) >= first_day, col(CommunityDay.day) < end_day)

    def total(column, *conditions):
        return select(func.coalesce(func.sum(column), 0)).where(of_community, *conditions).scalar_subquery()

    statement = select(
        total(col(CommunityDay.new_members)),
        total(col(CommunityDay.new_members), *in_window),
        total(col(CommunityDay.threads), *in_window),
        total(col(CommunityDay.comments), *in_window),
        count_where(UnansweredThread, *_waiting(community_id, asked_before=asked_before)),
    )
    return CommunityCounts(*(int(value) for value in (await session.execute(statement)).one()))


async def posts_by_day(
    db: Db, *, community_id: str, first_day: date, end_day: date
) -> tuple[list[int], list[int]]:
    """Threads and comments made on each day of [first_day, end_day): two lists, one number a day.
    One statement."""
    session = db.session
    statement = select(col(CommunityDay.day), col(CommunityDay.threads), col(CommunityDay.comments)).where(
        col(CommunityDay.community_id) == community_id,
        col(CommunityDay.day) >= first_day,
        col(CommunityDay.day) < end_day,
    )
    days = (end_day - first_day).days
    counted = {"thread": [0] * days, "comment": [0] * days}
    for day, threads, comments in (await session.execute(statement)).all():
        index = (day - first_day) // timedelta(days=1)
        counted["thread"][index], counted["comment"][index] = int(threads), int(comments)
    return counted["thread"], counted["comment"]


async def most_active(db: Db, *, community_id: str, limit: int) -> list[Poster]:
    """The users with the most threads and comments in the community, all time, most first (then
    the latest id first: the index's order), at most `limit`. One statement."""
    session = db.session
    statement = (
        select(
            col(CommunityPoster.user_id),
            col(User.name),
            col(CommunityPoster.threads),
            col(CommunityPoster.comments),
        )
        .join(User, col(User.id) == CommunityPoster.user_id)
        .where(col(CommunityPoster.community_id) == community_id, col(CommunityPoster.posts) > 0)
        .order_by(col(CommunityPoster.posts).desc(), col(CommunityPoster.user_id).desc())
        .limit(limit)
    )
    return [
        Poster(user_id, name, int(threads), int(comments))
        for user_id, name, threads, comments in (await session.execute(statement)).all()
    ]


async def waiting_threads(
    db: Db, *, community_id: str, asked_before: datetime, limit: int
) -> list[WaitingThread]:
    """The oldest `limit` threads waiting for an answer (see `_waiting`), oldest first. One statement."""
    session = db.session
    statement = (
        select(
            col(Thread.id),
            col(Thread.title),
            col(Thread.author_id),
            col(User.name),
            col(Thread.created_at),
            col(Thread.comment_count),
        )
        .select_from(UnansweredThread)
        .join(Thread, col(Thread.id) == UnansweredThread.thread_id)
        .join(User, col(User.id) == Thread.author_id)
        .where(*_waiting(community_id, asked_before=asked_before))
        .order_by(col(UnansweredThread.created_at), col(UnansweredThread.thread_id))
        .limit(limit)
    )
    return [WaitingThread(*row) for row in (await session.execute(statement)).all()]
