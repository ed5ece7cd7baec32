"""Communities, members, media, threads and comments in the store. Functions return None for "not found"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, bindparam, delete, func, or_, select, update
from sqlmodel import col

from storage.db import Db
from storage.ids import new_id
from storage.queries import add_row, contains_text, count_where, delete_row, update_row
from storage.statements import PreparedQuery
from storage.tables import Comment, Community, Media, Member, Thread, User

__all__ = [
    "CommentWithAuthor",
    "NewThread",
    "Poster",
    "add_comment",
    "add_community",
    "add_media",
    "add_member",
    "comments_query",
    "communities_query",
    "community_contents",
    "community_counts",
    "count_thread_comments",
    "delete_comment_tree",
    "delete_community",
    "delete_thread",
    "get_comment",
    "get_community",
    "get_member",
    "get_producer_thread",
    "get_thread",
    "insert_thread",
    "lock_community_threads",
    "media_query",
    "members_query",
    "note_comment_added",
    "recount_comments",
    "remove_member",
    "slug_taken",
    "thread_comments",
    "threads_query",
    "update_comment",
    "update_community",
    "update_thread",
    "users_by_id",
]


async def get_community(
    db: Db, *, producer_id: str, community_id: str, lock: bool = False
) -> Community | None:
    """A community of `producer_id`; another producer's community is None. With `lock`, held
    (FOR UPDATE where the engine has it) until commit: no thread, member or media can join it."""
    session = db.session
    statement = select(Community).where(
        col(Community.id) == community_id, col(Community.producer_id) == producer_id
    )
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def slug_taken(db: Db, *, slug: str) -> bool:
    """Whether any community on the platform has `slug` (slugs are public URLs)."""
    session = db.session
    return (
        await session.scalars(select(col(Community.id)).where(col(Community.slug) == slug))
    ).first() is not None


def communities_query(*, producer_id: str) -> Select:
    """A producer's communities, newest first."""
    statement = select(Community).where(col(Community.producer_id) == producer_id)
    return statement.order_by(col(Community.created_at).desc(), col(Community.id).desc())


async def community_counts(db: Db, *, community_id: str) -> tuple[int, int, int]:
    """(members, threads, media) of a community, in one query."""
    session = db.session
    counts = select(
        count_where(Member, col(Member.community_id) == community_id),
        count_where(Thread, col(Thread.community_id) == community_id),
        count_where(Media, col(Media.community_id) == community_id),
    )
    members, threads, media = (await session.execute(counts)).one()
    return members, threads, media


async def lock_community_threads(db: Db, *, community_id: str) -> None:
    """Hold every thread of a community until commit (FOR UPDATE where the engine has it), in one
    statement: a comment cannot come in (its foreign key check waits for the lock), so a count
    taken next is what a delete of the community takes with it. SQLite has one writer anyway."""
    session = db.session
    locked = (
        select(col(Thread.id)).where(col(Thread.community_id) == community_id).with_for_update().subquery()
    )
    await session.execute(select(func.count()).select_from(locked))


async def community_contents(db: Db, *, community_id: str) -> tuple[int, int, int, int]:
    """(threads, comments, members, media) of a community, in one query."""
    session = db.session
    thread_ids = select(col(Thread.id)).where(col(Thread.community_id) == community_id)
    statement = select(
        count_where(Thread, col(Thread.community_id) == community_id),
        count_where(Comment, col(Comment.thread_id).in_(thread_ids)),
        count_where(Member, col(Member.community_id) == community_id),
        count_where(Media, col(Media.community_id) == community_id),
    )
    threads, comments, members, media = (await session.execute(statement)).one()
    return threads, comments, members, media


async def users_by_id(db: Db, user_ids: Iterable[str]) -> dict[str, User]:
    """The users named by `user_ids`, in one query (for a page of rows that point at users)."""
    session = db.session
    wanted = set(user_ids)
    if not wanted:
        return {}
    return {user.id: user for user in await session.scalars(select(User).where(col(User.id).in_(wanted)))}


_COMMUNITIES, _USERS, _MEMBERS = Community.__table__, User.__table__, Member.__table__
_COMMUNITY_AND_AUTHOR = PreparedQuery(
    select(
        _COMMUNITIES.c.id,
        _USERS.c.id.label("user_id"),
        _USERS.c.name,
        _USERS.c.avatar_url,
        _USERS.c.role,
        _MEMBERS.c.id.label("member_id"),
    )
    .select_from(_COMMUNITIES)
    .outerjoin(
        _USERS, (_USERS.c.id == bindparam("user_id")) & (_USERS.c.producer_id == bindparam("producer_id"))
    )
    .outerjoin(_MEMBERS, (_MEMBERS.c.community_id == _COMMUNITIES.c.id) & (_MEMBERS.c.user_id == _USERS.c.id))
    .where(
        _COMMUNITIES.c.id == bindparam("community_id"), _COMMUNITIES.c.producer_id == bindparam("producer_id")
    )
)


@dataclass(frozen=True)
class Poster:
    """The user who would post in a community: what a thread or comment shows of its author."""

    id: str
    name: str
    avatar_url: str | None
    role: str


async def community_and_author(
    db: Db, *, producer_id: str, community_id: str, user_id: str
) -> tuple[str | None, Poster | None, bool]:
    """Whether `producer_id` has the community (its id, or None), the user of the same producer
    who would post in it, and whether that user is a member, in one statement: (None, None,
    False) without the community, (id, None, False) without the user."""
    keys = {"producer_id": producer_id, "community_id": community_id, "user_id": user_id}
    row = await db.first(_COMMUNITY_AND_AUTHOR, **keys)
    if row is None:
        return None, None, False
    author_id = row["user_id"]
    poster = Poster(author_id, row["name"], row["avatar_url"], row["role"]) if author_id is not None else None
    return row["id"], poster, row["member_id"] is not None


_INSERT_THREAD = PreparedQuery(Thread.__table__.insert())


@dataclass(frozen=True)
class NewThread:
    """A thread's columns as `insert_thread` writes them: a plain row, where a `Thread` model would
    cost SQLModel's and the ORM's set-up of an instance for a row that is only inserted."""

    id: str
    community_id: str
    author_id: str
    title: str
    content: str
    pinned: bool
    comment_count: int
    last_activity_at: datetime
    created_at: datetime
    updated_at: datetime


async def insert_thread(
    db: Db,
    *,
    community_id: str,
    author_id: str,
    title: str,
    content: str,
    pinned: bool,
    at: datetime,
) -> NewThread:
    """Insert a new thread of `author_id` in the community: a plain insert (no model for the
    session to track). Returns its columns."""
    thread = NewThread(
        id=new_id("thread"),
        community_id=community_id,
        author_id=author_id,
        title=title,
        content=content,
        pinned=pinned,
        comment_count=0,
        last_activity_at=at,
        created_at=at,
        updated_at=at,
    )
    await db.run(_INSERT_THREAD, **vars(thread))
    return thread


async def get_member(db: Db, *, community_id: str, user_id: str) -> Member | None:
    session = db.session
    statement = select(Member).where(col(Member.community_id) == community_id, col(Member.user_id) == user_id)
    return (await session.scalars(statement)).first()


def members_query(*, community_id: str, user_id: str | None = None) -> Select:
    """A community's members, in the order they joined; with `user_id`, only that user's membership."""
    statement = select(Member).where(col(Member.community_id) == community_id)
    if user_id is not None:
        statement = statement.where(col(Member.user_id) == user_id)
    return statement.order_by(col(Member.joined_at), col(Member.id))


def media_query(*, community_id: str, media_type: str | None = None) -> Select:
    """A community's media, newest first, optionally of one type."""
    statement = select(Media).where(col(Media.community_id) == community_id)
    if media_type is not None:
        statement = statement.where(col(Media.type) == media_type)
    return statement.order_by(col(Media.created_at).desc(), col(Media.id).desc())


async def get_thread(db: Db, *, community_id: str, thread_id: str, lock: bool = False) -> Thread | None:
    """A thread of the community; with `lock`, held (FOR UPDATE where the engine has it) until
    commit: no comment can come in (its foreign key check waits for the lock)."""
    session = db.session
    statement = select(Thread).where(col(Thread.id) == thread_id, col(Thread.community_id) == community_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def get_producer_thread(db: Db, *, producer_id: str, thread_id: str) -> Thread | None:
    """A thread in any community of `producer_id`; another producer's thread is None."""
    session = db.session
    statement = (
        select(Thread)
        .join(Community, col(Community.id) == Thread.community_id)
        .where(col(Thread.id) == thread_id, col(Community.producer_id) == producer_id)
    )
    return (await session.scalars(statement)).first()


def threads_query(
    *,
    community_id: str | None = None,
    producer_id: str | None = None,
    search: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select:
    """A community's threads, pinned first, then the most recent activity (ix_threads_community_order);
    or, given `producer_id` instead, the threads of all its communities, most recent activity first.

    Optionally only those whose title or content contains `search` (no index covers thread text:
    the community or producer narrows the rows first), created at or after `since` and before `until`.
    """
    if (community_id is None) == (producer_id is None):
        raise TypeError("threads_query takes exactly one of community_id and producer_id")
    if community_id is not None:
        statement = select(Thread).where(col(Thread.community_id) == community_id)
        order = (col(Thread.pinned).desc(), col(Thread.last_activity_at).desc(), col(Thread.id).desc())
    else:
        communities = select(col(Community.id)).where(col(Community.producer_id) == producer_id)
        statement = select(Thread).where(col(Thread.community_id).in_(communities))
        order = (col(Thread.last_activity_at).desc(), col(Thread.id).desc())
    if since is not None:
        statement = statement.where(col(Thread.created_at) >= since)
    if until is not None:
        statement = statement.where(col(Thread.created_at) < until)
    if search:
        statement = statement.where(
            or_(contains_text(col(Thread.title), search), contains_text(col(Thread.content), search))
        )
    return statement.order_by(*order)


async def note_comment_added(db: Db, *, thread_id: str, at: datetime) -> None:
    """Count a new comment on its thread and make `at` the thread's last activity."""
    session = db.session
    values = {"comment_count": col(Thread.comment_count) + 1, "last_activity_at": at}
    await session.execute(update(Thread).where(col(Thread.id) == thread_id).values(**values))


async def recount_comments(db: Db, *, thread_id: str) -> None:
    """Set a thread's comment count from its rows (after deleting a subtree of unknown size)."""
    session = db.session
    counted = count_where(Comment, col(Comment.thread_id) == thread_id)
    await session.execute(update(Thread).where(col(Thread.id) == thread_id).values(comment_count=counted))


async def get_comment(db: Db, *, thread_id: str, comment_id: str) -> Comment | None:
    session = db.session
    statement = select(Comment).where(col(Comment.id) == comment_id, col(Comment.thread_id) == thread_id)
    return (await session.scalars(statement)).first()


async def count_thread_comments(db: Db, *, thread_id: str) -> int:
    session = db.session
    statement = select(func.count()).select_from(Comment).where(col(Comment.thread_id) == thread_id)
    return (await session.execute(statement)).scalar_one()


def comments_query(
    *, thread_id: str | None = None, community_id: str | None = None, search: str | None = None
) -> Select:
    """A thread's comments, oldest first, replies among them; or, given `community_id` instead,
    the comments of all the community's threads, newest first. Optionally only those whose
    content contains `search`."""
    if (thread_id is None) == (community_id is None):
        raise TypeError("comments_query takes exactly one of thread_id and community_id")
    if thread_id is not None:
        statement = select(Comment).where(col(Comment.thread_id) == thread_id)
        order = (col(Comment.created_at), col(Comment.id))
    else:
        threads = select(col(Thread.id)).where(col(Thread.community_id) == community_id)
        statement = select(Comment).where(col(Comment.thread_id).in_(threads))
        order = (col(Comment.created_at).desc(), col(Comment.id).desc())
    if search:
        statement = statement.where(contains_text(col(Comment.content), search))
    return statement.order_by(*order)


CommentWithAuthor = tuple[Comment, str, str | None]
"""A comment with its author's name and avatar URL."""


async def thread_comments(db: Db, *, thread_id: str) -> Sequence[CommentWithAuthor]:
    """Every comment of a thread with its author's name and avatar, oldest first: one query, any size."""
    session = db.session
    statement = (
        select(Comment, col(User.name), col(User.avatar_url))
        .join(User, col(User.id) == Comment.author_id)
        .where(col(Comment.thread_id) == thread_id)
        .order_by(col(Comment.created_at), col(Comment.id))
    )
    return (await session.execute(statement)).all()


async def delete_comment_tree(db: Db, *, comment_id: str) -> int:
    """Delete a comment and all its replies, at any depth, in one statement; returns how many
    comments went (the comment included).

    A recursive CTE collects the subtree; deleting it whole keeps the parent_id foreign key
    satisfied at the end of the statement without a cascade per level.
    """
    # Nested in the IN (...), so the statement starts with DELETE: Python's sqlite3 reports no
    # rowcount for one that starts with WITH.
    session = db.session
    subtree = (
        select(col(Comment.id))
        .where(col(Comment.id) == comment_id)
        .cte("subtree", recursive=True, nesting=True)
    )
    subtree = subtree.union_all(select(col(Comment.id)).join(subtree, col(Comment.parent_id) == subtree.c.id))
    # session.execute is typed to return a Result; a DELETE's is the CursorResult that counts its rows.
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            delete(Comment)
            .where(col(Comment.id).in_(select(subtree.c.id)))
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount


# ---- writes through the session: each flushes, so a constraint a write breaks raises
# `ConstraintViolation` from the call that made it.


async def add_community(db: Db, *, producer_id: str, at: datetime, **columns: Any) -> Community:
    """Insert a community of `producer_id` with `columns` (name, slug, ...); a slug another
    community took meanwhile raises `ConstraintViolation`."""
    community = Community(id=new_id("comm"), producer_id=producer_id, **columns, created_at=at, updated_at=at)
    await add_row(db, row=community)
    return community


async def update_community(db: Db, *, community: Community, changes: Mapping[str, Any], at: datetime) -> None:
    """Write `changes` to `community` (`updated_at` becomes `at` if there are any)."""
    await update_row(db, row=community, changes=changes, at=at)


async def delete_community(db: Db, *, community: Community) -> None:
    """Delete a community; the database cascades to its threads, comments, members and media."""
    await delete_row(db, row=community)


async def add_member(db: Db, *, community_id: str, user_id: str, role: str, at: datetime) -> Member:
    """Make `user_id` a member of the community; a membership added meanwhile raises `ConstraintViolation`."""
    member = Member(
        id=new_id("mem"), community_id=community_id, user_id=user_id, role=role, joined_at=at, updated_at=at
    )
    await add_row(db, row=member)
    return member


async def remove_member(db: Db, *, member: Member) -> None:
    await delete_row(db, row=member)


async def add_media(db: Db, *, community_id: str, uploaded_by: str, at: datetime, **columns: Any) -> Media:
    """Insert a media item of the community with `columns` (type, title, url, ...)."""
    media = Media(
        id=new_id("media"), community_id=community_id, uploaded_by=uploaded_by, **columns, created_at=at
    )
    await add_row(db, row=media)
    return media


async def update_thread(db: Db, *, thread: Thread, changes: Mapping[str, Any], at: datetime) -> None:
    """Write `changes` to `thread` (`updated_at` becomes `at` if there are any)."""
    await update_row(db, row=thread, changes=changes, at=at)


async def delete_thread(db: Db, *, thread: Thread) -> None:
    """Delete a thread; the database cascades to its comments."""
    await delete_row(db, row=thread)


async def add_comment(
    db: Db,
    *,
    thread_id: str,
    parent_id: str | None,
    author_id: str,
    content: str,
    at: datetime,
) -> Comment:
    """Insert a comment on the thread (a reply to `parent_id`, if given) and count it on the
    thread, whose last activity becomes `at`."""
    comment = Comment(
        id=new_id("cmt"),
        thread_id=thread_id,
        parent_id=parent_id,
        author_id=author_id,
        content=content,
        created_at=at,
        updated_at=at,
    )
    await add_row(db, row=comment)
    await note_comment_added(db, thread_id=thread_id, at=at)
    return comment


async def update_comment(db: Db, *, comment: Comment, changes: Mapping[str, Any], at: datetime) -> None:
    """Write `changes` to `comment` (`updated_at` becomes `at` if there are any)."""
    await update_row(db, row=comment, changes=changes, at=at)
