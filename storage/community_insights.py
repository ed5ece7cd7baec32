"""A community's activity over a window, in the store: members, posts per day, the most active
posters, and the threads waiting for an answer.

Read by `get_community_insights`. A fixed number of statements however large the community:
the counts in one, the posts per day in one (bucketed by bound day boundaries, so both engines
count the same UTC days), the most active posters in one, the waiting threads in one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, exists, func, literal, select, union_all
from sqlmodel import col

from storage.db import Db
from storage.queries import count_where
from storage.tables import Comment, Member, Thread, User

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


def _in_community(community_id: str):
    return select(col(Thread.id)).where(col(Thread.community_id) == community_id)


def _waiting(community_id: str, *, asked_before: datetime):
    """The community's threads created at or before `asked_before` that no one but their author
    has commented on."""
    answered = exists().where(col(Comment.thread_id) == Thread.id, col(Comment.author_id) != Thread.author_id)
    return (
        col(Thread.community_id) == community_id,
        col(Thread.created_at) <= asked_before,
        ~answered.correlate(Thread),
    )


async def community_counts(
    db: Db, *, community_id: str, since: datetime, until: datetime, asked_before: datetime
) -> CommunityCounts:
    """Members now; members who joined, threads and comments made in [since, until); threads
    waiting for an answer (see `_waiting`). One statement."""
    session = db.session
    statement = select(
        count_where(Member, col(Member.community_id) == community_id),
        count_where(
            Member,
            col(Member.community_id) == community_id,
            col(Member.joined_at) >= since,
            col(Member.joined_at) < until,
        ),
        count_where(
            Thread,
            col(Thread.community_id) == community_id,
            col(Thread.created_at) >= since,
            col(Thread.created_at) < until,
        ),
        count_where(
            Comment,
            col(Comment.thread_id).in_(_in_community(community_id)),
            col(Comment.created_at) >= since,
            col(Comment.created_at) < until,
        ),
        count_where(Thread, *_waiting(community_id, asked_before=asked_before)),
    )
    return CommunityCounts(*(await session.execute(statement)).one())


async def posts_by_day(
    db: Db, *, community_id: str, boundaries: Sequence[datetime]
) -> tuple[list[int], list[int]]:
    """Threads and comments made in each day [boundaries[i], boundaries[i + 1]): two lists, one
    number a day. One statement."""
    session = db.session
    since, until = boundaries[0], boundaries[-1]

    def bucket(created_at):
        return case(
            *((created_at < boundary, index) for index, boundary in enumerate(boundaries[1:])),
            else_=len(boundaries) - 1,
        )

    threads = select(literal("thread").label("kind"), bucket(col(Thread.created_at)).label("day")).where(
        col(Thread.community_id) == community_id,
        col(Thread.created_at) >= since,
        col(Thread.created_at) < until,
    )
    comments = select(literal("comment").label("kind"), bucket(col(Comment.created_at)).label("day")).where(
        col(Comment.thread_id).in_(_in_community(community_id)),
        col(Comment.created_at) >= since,
        col(Comment.created_at) < until,
    )
    posts = union_all(threads, comments).subquery()
    statement = select(posts.c.kind, posts.c.day, func.count()).group_by(posts.c.kind, posts.c.day)
    days = len(boundaries) - 1
    counted = {"thread": [0] * days, "comment": [0] * days}
    for kind, day, number in (await session.execute(statement)).all():
        counted[kind][day] = number
    return counted["thread"], counted["comment"]


async def most_active(
    db: Db, *, community_id: str, since: datetime, until: datetime, limit: int
) -> list[Poster]:
    """The users with the most threads and comments made in the community in [since, until), most
    first (then by name and id), at most `limit`. One statement."""
    session = db.session
    threads = select(
        col(Thread.author_id).label("user_id"),
        literal(1).label("thread"),
        literal(0).label("comment"),
    ).where(
        col(Thread.community_id) == community_id,
        col(Thread.created_at) >= since,
        col(Thread.created_at) < until,
    )
    comments = select(
        col(Comment.author_id).label("user_id"),
        literal(0).label("thread"),
        literal(1).label("comment"),
    ).where(
        col(Comment.thread_id).in_(_in_community(community_id)),
        col(Comment.created_at) >= since,
        col(Comment.created_at) < until,
    )
    posts = union_all(threads, comments).subquery()
    thread_count, comment_count = func.sum(posts.c.thread), func.sum(posts.c.comment)
    statement = (
        select(posts.c.user_id, col(User.name), thread_count, comment_count)
        .join(User, col(User.id) == posts.c.user_id)
        .group_by(posts.c.user_id, col(User.name))
        .order_by((thread_count + comment_count).desc(), col(User.name), posts.c.user_id)
        .limit(limit)
    )
    return [Poster(*row) for row in (await session.execute(statement)).all()]


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
        .join(User, col(User.id) == Thread.author_id)
        .where(*_waiting(community_id, asked_before=asked_before))
        .order_by(col(Thread.created_at), col(Thread.id))
        .limit(limit)
    )
    return [WaitingThread(*row) for row in (await session.execute(statement)).all()]
