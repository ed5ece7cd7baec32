"""Threads and their comments, with nested replies, inside a community."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import partial
from typing import Annotated

from pydantic import Field

from storage import communities as communities_storage
from storage.erasure import DELETED_STUDENT_NAME, redact_removed_content
from storage.tables import Comment, Community, Thread, User
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import BadRequest, Forbidden, NotFound, Unprocessable
from tools.core.fields import NOT_BLANK_CHECKS, Id, IsoDatetime
from tools.core.models import Deleted, OutputModel, Page, PageQuery, UtcDatetime
from tools.core.paging import paged
from tools.core.permissions import Permission
from tools.core.updates import given_changes, unchanged
from tools.domains.communities import (
    CommunityPath,
    Name,
    community_row,
    producer_user,
)

__all__ = [
    "MAX_NESTING",
    "STAFF_ROLES",
    "create_comment",
    "create_thread",
    "delete_comment",
    "delete_thread",
    "get_thread",
    "list_comments",
    "list_threads",
    "update_comment",
    "update_thread",
]

STAFF_ROLES = frozenset({"owner", "staff", "bot"})
"""A producer's own users: they may post in any of its communities without being members."""

MAX_NESTING = 32
"""How many levels of replies get_thread nests. Deeper replies are listed flat under their
level-32 ancestor: JSON parsers refuse deep documents (serde_json at 128 levels, pydantic's
at 200), and every level of replies costs two."""

Body = Annotated[str, Field(min_length=1, max_length=20000), *NOT_BLANK_CHECKS]


class AuthorPublic(OutputModel):
    id: str
    name: str
    avatar_url: str | None


class ThreadPublic(OutputModel):
    id: str
    community_id: str
    title: str
    content: str
    pinned: bool
    author: AuthorPublic
    comment_count: int
    last_activity_at: UtcDatetime
    created_at: UtcDatetime
    updated_at: UtcDatetime


class CommentPublic(OutputModel):
    id: str
    thread_id: str
    parent_id: str | None
    content: str
    author: AuthorPublic
    created_at: UtcDatetime
    updated_at: UtcDatetime


class CommentNode(CommentPublic):
    replies: list[CommentNode]


class ThreadDetail(ThreadPublic):
    comments: list[CommentNode]


class ThreadResult(OutputModel):
    thread: ThreadPublic


class ThreadDetailResult(OutputModel):
    thread: ThreadDetail


class CommentResult(OutputModel):
    comment: CommentPublic


class ThreadDeleted(Deleted):
    """A deleted thread, and how many comments went with it (it was locked: none came in between)."""

    comments_deleted: int


class CommentDeleted(Deleted):
    """A deleted comment, and how many replies, at any depth, went with it."""

    replies_deleted: int


def _author(user: User | communities_storage.Poster) -> AuthorPublic:
    return AuthorPublic(id=user.id, name=user.name, avatar_url=user.avatar_url)


def _thread_fields(
    thread: Thread | communities_storage.NewThread, author: User | communities_storage.Poster
) -> dict:
    return {
        "id": thread.id,
        "community_id": thread.community_id,
        "title": thread.title,
        "content": thread.content,
        "pinned": thread.pinned,
        "author": _author(author),
        "comment_count": thread.comment_count,
        "last_activity_at": thread.last_activity_at,
        "created_at": thread.created_at,
        "updated_at": thread.updated_at,
    }


def _comment_fields(comment: Comment, author: AuthorPublic) -> dict:
    return {
        "id": comment.id,
        "thread_id": comment.thread_id,
        "parent_id": comment.parent_id,
        "content": comment.content,
        "author": author,
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
    }


def comment_tree(rows: Iterable[communities_storage.CommentWithAuthor]) -> list[CommentNode]:
    """The comments of one thread (rows of comment, author name, author avatar; oldest first) as a tree.

    Iterative, never recursive, so a reply chain of any depth fits; see MAX_NESTING.
    """
    nodes: list[CommentNode] = []
    for comment, name, avatar_url in rows:
        author = AuthorPublic(id=comment.author_id, name=name, avatar_url=avatar_url)
        nodes.append(CommentNode(**_comment_fields(comment, author), replies=[]))
    ids = {node.id for node in nodes}  # a parent outside the thread cannot happen; it would make a root
    children: dict[str, list[CommentNode]] = defaultdict(list)
    roots = []
    for node in nodes:
        (children[node.parent_id] if node.parent_id in ids else roots).append(node)

    to_place = [(node, 1) for node in roots]
    while to_place:
        node, level = to_place.pop()
        if level < MAX_NESTING:
            node.replies = children[node.id]
            to_place.extend((child, level + 1) for child in node.replies)
        else:
            node.replies = _descendants_in_order(node, children)
    return roots


def _descendants_in_order(node: CommentNode, children: dict[str, list[CommentNode]]) -> list[CommentNode]:
    """Every reply below `node`, depth first, each before its own replies (the reading order)."""
    ordered = []
    pending = list(reversed(children[node.id]))
    while pending:
        reply = pending.pop()
        ordered.append(reply)
        pending.extend(reversed(children[reply.id]))
    return ordered


async def _post_author(ctx: OperationContext, community: Community, user_id: str) -> User:
    """The author of a new thread or comment: a member of the community or a staff user."""
    user = await producer_user(ctx, user_id)
    member = None
    if user.role not in STAFF_ROLES:
        member = await communities_storage.get_member(ctx.db, community_id=community.id, user_id=user.id)
    _check_may_post(user, is_member=member is not None)
    return user


def _check_may_post(user: User | communities_storage.Poster, *, is_member: bool) -> None:
    if user.role == "bot" and user.name == DELETED_STUDENT_NAME:  # storage.erasure.deleted_student
        raise Forbidden(f"User {user.id} stands for erased students' kept posts; nobody posts as it")
    if user.role not in STAFF_ROLES and not is_member:
        raise Forbidden(f"User {user.id} is not a member of this community; call add_member first")


async def _community_and_author(
    ctx: OperationContext, community_id: str, user_id: str
) -> communities_storage.Poster:
    """`community_row` and `_post_author` in one statement: the author, once both are checked."""
    found, user, is_member = await communities_storage.community_and_author(
        ctx.db, producer_id=ctx.producer_id, community_id=community_id, user_id=user_id
    )
    if found is None:
        raise NotFound("Community not found")
    if user is None:
        raise NotFound("User not found")
    _check_may_post(user, is_member=is_member)
    return user


async def _user(ctx: OperationContext, user_id: str) -> User:
    return (await communities_storage.users_by_id(ctx.db, [user_id]))[user_id]


# --- threads ---


class ThreadPath(CommunityPath):
    thread_id: Id


class ListThreadsInput(PageQuery):
    community_id: Id | None = None
    search: str | None = Field(default=None, max_length=200, description="Title or content contains it.")
    since: IsoDatetime | None = Field(default=None, description="Created at/after.")
    until: IsoDatetime | None = Field(default=None, description="Created before.")


class ListCommentsInput(PageQuery):
    community_id: Id | None = None
    thread_id: Id | None = None
    search: str | None = Field(default=None, max_length=200)


class CreateThreadInput(CommunityPath):
    title: Name = Field(description="Max 200 characters.")
    content: Body = Field(description="Max 20000 characters.")
    user_id: Id
    pinned: bool = False


class UpdateThreadInput(ThreadPath):
    title: Name = unchanged()
    content: Body = unchanged()
    pinned: bool = unchanged()


async def _community_and_thread(
    ctx: OperationContext, data: ThreadPath, *, lock: bool = False
) -> tuple[Community, Thread]:
    community = await community_row(ctx, data.community_id)
    return community, await _thread_in(ctx, community, data.thread_id, lock=lock)


async def _thread_in(
    ctx: OperationContext, community: Community, thread_id: str, *, lock: bool = False
) -> Thread:
    thread = await communities_storage.get_thread(
        ctx.db, community_id=community.id, thread_id=thread_id, lock=lock
    )
    if thread is None:
        raise NotFound("Thread not found")
    return thread


async def _thread_row(ctx: OperationContext, data: ThreadPath, *, lock: bool = False) -> Thread:
    return (await _community_and_thread(ctx, data, lock=lock))[1]


async def _threads_public(ctx: OperationContext, rows: list[Thread]) -> list[ThreadPublic]:
    authors = await communities_storage.users_by_id(ctx.db, (row.author_id for row in rows))
    return [ThreadPublic(**_thread_fields(row, authors[row.author_id])) for row in rows]


@operation(
    title="Create thread",
    permission=Permission.COMMUNITIES_WRITE,
    http=("POST", "/communities/{communityId}/threads", 201),
    kind="write",
    events=("thread.created",),
)
async def create_thread(ctx: OperationContext, data: CreateThreadInput) -> ThreadResult:
    """Start a thread in a community; author (userId): a member or staff."""
    author = await _community_and_author(ctx, data.community_id, data.user_id)
    thread = await communities_storage.insert_thread(
        ctx.db,
        community_id=data.community_id,
        author_id=author.id,
        title=data.title,
        content=data.content,
        pinned=data.pinned,
        at=ctx.now(),
    )
    return ThreadResult(thread=ThreadPublic(**_thread_fields(thread, author)))


@operation(
    title="List threads",
    permission=Permission.COMMUNITIES_READ,
    http=("GET", "/communities/{communityId}/threads"),
    input_rules=("since is not after until.",),
    http_also=[("/threads", "list_threads_of_all_communities")],
    kind="read",
)
async def list_threads(ctx: OperationContext, data: ListThreadsInput) -> Page[ThreadPublic]:
    """Threads, a community's pinned first, then by activity; no communityId: all communities'."""
    if data.since and data.until and data.since > data.until:
        raise Unprocessable("Invalid input: since, until: since must not be after until")
    scope = {"producer_id": ctx.producer_id}
    if data.community_id is not None:
        scope = {"community_id": (await community_row(ctx, data.community_id)).id}
    statement = communities_storage.threads_query(
        **scope, search=data.search, since=data.since, until=data.until
    )
    return await paged(ctx.db, statement, query=data, convert_page=partial(_threads_public, ctx))


@operation(
    title="Get thread",
    permission=Permission.COMMUNITIES_READ,
    http=("GET", "/communities/{communityId}/threads/{threadId}"),
    kind="read",
)
async def get_thread(ctx: OperationContext, data: ThreadPath) -> ThreadDetailResult:
    """A thread with its comment tree, oldest first; replies past 32 levels are flat."""
    thread = await _thread_row(ctx, data)
    author = await _user(ctx, thread.author_id)
    tree = comment_tree(await communities_storage.thread_comments(ctx.db, thread_id=thread.id))
    return ThreadDetailResult(thread=ThreadDetail(**_thread_fields(thread, author), comments=tree))


@operation(
    title="Update thread",
    permission=Permission.COMMUNITIES_WRITE,
    http=("PATCH", "/communities/{communityId}/threads/{threadId}"),
    kind="write",
    idempotent=True,
    events=("thread.updated",),
)
async def update_thread(ctx: OperationContext, data: UpdateThreadInput) -> ThreadResult:
    """Update a thread's title or content, or pin/unpin it."""
    thread = await _thread_row(ctx, data)
    changes = given_changes(data, target=ThreadPath)
    await communities_storage.update_thread(ctx.db, thread=thread, changes=changes, at=ctx.now())
    return ThreadResult(thread=ThreadPublic(**_thread_fields(thread, await _user(ctx, thread.author_id))))


@operation(
    title="Delete thread",
    permission=Permission.COMMUNITIES_WRITE,
    http=("DELETE", "/communities/{communityId}/threads/{threadId}"),
    kind="delete",
    idempotent=False,
    events=("thread.deleted",),
)
async def delete_thread(ctx: OperationContext, data: ThreadPath) -> ThreadDeleted:
    """Delete a thread and its comments; counts them."""
    thread = await _thread_row(ctx, data, lock=True)
    comments = await communities_storage.count_thread_comments(ctx.db, thread_id=thread.id)
    await communities_storage.delete_thread(ctx.db, thread=thread)
    await redact_removed_content(ctx.db, producer_id=ctx.producer_id, community_id=thread.community_id)
    return ThreadDeleted(id=thread.id, comments_deleted=comments)


# --- comments ---


class CommentPath(ThreadPath):
    comment_id: Id


class CreateCommentInput(ThreadPath):
    content: Body = Field(description="Max 20000 characters.")
    user_id: Id
    parent_id: Id | None = None


class UpdateCommentInput(CommentPath):
    content: Body = Field(description="Max 20000 characters.")


async def _comment_row(ctx: OperationContext, data: CommentPath) -> Comment:
    thread = await _thread_row(ctx, data)
    comment = await communities_storage.get_comment(ctx.db, thread_id=thread.id, comment_id=data.comment_id)
    if comment is None:
        raise NotFound("Comment not found")
    return comment


def _comment_public(comment: Comment, author: User) -> CommentPublic:
    return CommentPublic(**_comment_fields(comment, _author(author)))


async def _comments_public(ctx: OperationContext, rows: list[Comment]) -> list[CommentPublic]:
    authors = await communities_storage.users_by_id(ctx.db, (row.author_id for row in rows))
    return [_comment_public(row, authors[row.author_id]) for row in rows]


@operation(
    title="Create comment",
    permission=Permission.COMMUNITIES_WRITE,
    http=("POST", "/communities/{communityId}/threads/{threadId}/comments", 201),
    kind="write",
    events=("comment.created",),
)
async def create_comment(ctx: OperationContext, data: CreateCommentInput) -> CommentResult:
    """Comment on a thread or reply to parentId; author (userId): a member or staff."""
    community, thread = await _community_and_thread(ctx, data)
    author = await _post_author(ctx, community, data.user_id)
    if (
        data.parent_id is not None
        and await communities_storage.get_comment(ctx.db, thread_id=thread.id, comment_id=data.parent_id)
        is None
    ):
        raise NotFound("Parent comment not found in this thread")
    comment = await communities_storage.add_comment(
        ctx.db,
        thread_id=thread.id,
        parent_id=data.parent_id,
        author_id=author.id,
        content=data.content,
        at=ctx.now(),
    )
    return CommentResult(comment=_comment_public(comment, author))


@operation(
    title="List comments",
    permission=Permission.COMMUNITIES_READ,
    http=("GET", "/communities/{communityId}/threads/{threadId}/comments"),
    http_also=[("/communities/{communityId}/comments", "list_comments_of_community")],
    kind="read",
)
async def list_comments(ctx: OperationContext, data: ListCommentsInput) -> Page[CommentPublic]:
    """Comments, flat: a thread's oldest first; with only communityId, its newest first."""
    if data.thread_id is not None:
        statement = communities_storage.comments_query(
            thread_id=(await _listed_thread(ctx, data.community_id, data.thread_id)).id, search=data.search
        )
    elif data.community_id is not None:
        community = await community_row(ctx, data.community_id)
        statement = communities_storage.comments_query(community_id=community.id, search=data.search)
    else:
        raise BadRequest("Invalid input: threadId, communityId: give a threadId, a communityId or both")
    return await paged(ctx.db, statement, query=data, convert_page=partial(_comments_public, ctx))


async def _listed_thread(ctx: OperationContext, community_id: str | None, thread_id: str) -> Thread:
    """The thread list_comments names: in its community when communityId is given, else in any of the caller's."""
    if community_id is not None:
        return await _thread_in(ctx, await community_row(ctx, community_id), thread_id)
    thread = await communities_storage.get_producer_thread(
        ctx.db, producer_id=ctx.producer_id, thread_id=thread_id
    )
    if thread is None:
        raise NotFound("Thread not found")
    return thread


@operation(
    title="Update comment",
    permission=Permission.COMMUNITIES_WRITE,
    http=("PATCH", "/communities/{communityId}/threads/{threadId}/comments/{commentId}"),
    kind="write",
    idempotent=True,
    events=("comment.updated",),
)
async def update_comment(ctx: OperationContext, data: UpdateCommentInput) -> CommentResult:
    """Replace a comment's content; its replies stay."""
    comment = await _comment_row(ctx, data)
    changes = given_changes(data, target=CommentPath)
    await communities_storage.update_comment(ctx.db, comment=comment, changes=changes, at=ctx.now())
    return CommentResult(comment=_comment_public(comment, await _user(ctx, comment.author_id)))


@operation(
    title="Delete comment",
    permission=Permission.COMMUNITIES_WRITE,
    http=("DELETE", "/communities/{communityId}/threads/{threadId}/comments/{commentId}"),
    kind="delete",
    idempotent=False,
    events=("comment.deleted",),
)
async def delete_comment(ctx: OperationContext, data: CommentPath) -> CommentDeleted:
    """Delete a comment and its replies at any depth; counts them."""
    comment = await _comment_row(ctx, data)
    deleted = await communities_storage.delete_comment_tree(ctx.db, comment_id=comment.id)
    await communities_storage.recount_comments(ctx.db, thread_id=comment.thread_id)
    await redact_removed_content(ctx.db, producer_id=ctx.producer_id, community_id=data.community_id)
    return CommentDeleted(id=comment.id, replies_deleted=deleted - 1)
