"""Communities, their members and their media. Threads and comments are in `tools.domains.discussions`."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from pydantic import Field

from storage import accounts as accounts_storage
from storage import communities as communities_storage
from storage.errors import ConstraintViolation
from storage.rules import MAX_FILE_SIZE, MediaType, MemberRole
from storage.tables import Community, Media, Member, User
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import Conflict, NotFound
from tools.core.fields import NOT_BLANK_CHECKS, SLUG_CHECKS, Count, Id, Price
from tools.core.models import (
    Deleted,
    InputModel,
    OutputModel,
    Page,
    PageQuery,
    UtcDatetime,
    WebUrl,
)
from tools.core.paging import paged
from tools.core.permissions import Permission
from tools.core.updates import given_changes, unchanged

__all__ = [
    "CommunityDeleted",
    "CommunityPath",
    "CommunityPathPage",
    "Name",
    "add_media",
    "add_member",
    "community_row",
    "create_community",
    "delete_community",
    "get_community",
    "list_communities",
    "list_media",
    "list_members",
    "producer_user",
    "remove_member",
    "update_community",
]

Name = Annotated[str, Field(min_length=1, max_length=200), *NOT_BLANK_CHECKS]
Slug = Annotated[str, Field(min_length=1, max_length=100), *SLUG_CHECKS]
_CommunityDescription = Annotated[str, Field(min_length=1, max_length=10000), *NOT_BLANK_CHECKS]
_MediaDescription = Annotated[str, Field(min_length=1, max_length=5000), *NOT_BLANK_CHECKS]
_FileText = Annotated[str, Field(min_length=1, max_length=255), *NOT_BLANK_CHECKS]


# --- shared by the community operations and tools.domains.discussions ---


class CommunityPath(InputModel):
    community_id: Id


class CommunityPathPage(PageQuery):
    community_id: Id


class ListMembersInput(CommunityPathPage):
    user_id: str | None = Field(default=None, max_length=100)  # one user's membership


async def community_row(ctx: OperationContext, community_id: str, *, lock: bool = False) -> Community:
    community = await communities_storage.get_community(
        ctx.db, producer_id=ctx.producer_id, community_id=community_id, lock=lock
    )
    if community is None:
        raise NotFound("Community not found")
    return community


async def producer_user(ctx: OperationContext, user_id: str) -> User:
    """A user of the caller's producer; any other id (another producer's too) is not_found."""
    user = await accounts_storage.get_user(ctx.db, producer_id=ctx.producer_id, user_id=user_id)
    if user is None:
        raise NotFound("User not found")
    return user


# --- communities ---


class CommunityPublic(OutputModel):
    id: str
    name: str
    slug: str
    description: str | None
    cover_image_url: str | None
    is_free: bool
    price: int
    is_public: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime


class CommunityDetail(CommunityPublic):
    member_count: int
    thread_count: int
    media_count: int


class CommunityResult(OutputModel):
    community: CommunityPublic


class CommunityDeleted(Deleted):
    """A deleted community, and what went with it (it and its threads were locked: nothing came in between)."""

    threads_deleted: int
    comments_deleted: int
    members_removed: int
    media_deleted: int


class CommunityDetailResult(OutputModel):
    community: CommunityDetail


def _community_public(community: Community) -> CommunityPublic:
    return CommunityPublic.model_validate(community, from_attributes=True)


class CreateCommunityInput(InputModel):
    name: Name
    slug: Slug = Field(description="Lowercase letters, digits, single hyphens.")
    description: _CommunityDescription | None = None
    cover_image_url: WebUrl | None = None
    is_free: bool = True
    price: Price = Field(default=0, description="Cents.")
    is_public: bool = True


class UpdateCommunityInput(CommunityPath):
    name: Name = unchanged()
    slug: Slug = unchanged()
    description: _CommunityDescription | None = Field(default=None, description="null clears it.")
    cover_image_url: WebUrl | None = Field(default=None, description="null clears it.")
    is_free: bool = unchanged()
    price: Price = unchanged()
    is_public: bool = unchanged()


async def _claim_slug(ctx: OperationContext, slug: str) -> None:
    if await communities_storage.slug_taken(ctx.db, slug=slug):
        raise _slug_taken(slug)


def _slug_taken(slug: str) -> Conflict:
    return Conflict(f"The slug {slug} is already taken; choose another")


@operation(
    title="Create community",
    permission=Permission.COMMUNITIES_WRITE,
    http=("POST", "/communities", 201),
    kind="write",
    events=("community.created",),
)
async def create_community(ctx: OperationContext, data: CreateCommunityInput) -> CommunityResult:
    """Create a community; its slug is platform-unique."""
    await _claim_slug(ctx, data.slug)
    try:
        community = await communities_storage.add_community(
            ctx.db, producer_id=ctx.producer_id, at=ctx.now(), **data.model_dump()
        )
    except ConstraintViolation:
        # A concurrent write took the same slug first.
        raise _slug_taken(data.slug) from None
    return CommunityResult(community=_community_public(community))


@operation(
    title="List communities",
    permission=Permission.COMMUNITIES_READ,
    http=("GET", "/communities"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def list_communities(ctx: OperationContext, data: PageQuery) -> Page[CommunityPublic]:
    """Communities, newest first. Paginated."""
    statement = communities_storage.communities_query(producer_id=ctx.producer_id)
    return await paged(ctx.db, statement, query=data, convert=_community_public)


@operation(
    title="Get community",
    permission=Permission.COMMUNITIES_READ,
    http=("GET", "/communities/{communityId}"),
    kind="read",
)
async def get_community(ctx: OperationContext, data: CommunityPath) -> CommunityDetailResult:
    """A community with member, thread and media counts."""
    community = await community_row(ctx, data.community_id)
    members, threads, media = await communities_storage.community_counts(ctx.db, community_id=community.id)
    detail = CommunityDetail(
        **_community_public(community).model_dump(),
        member_count=members,
        thread_count=threads,
        media_count=media,
    )
    return CommunityDetailResult(community=detail)


@operation(
    title="Update community",
    permission=Permission.COMMUNITIES_WRITE,
    http=("PATCH", "/communities/{communityId}"),
    kind="write",
    idempotent=True,
    events=("community.updated",),
)
async def update_community(ctx: OperationContext, data: UpdateCommunityInput) -> CommunityResult:
    """Update a community's settings."""
    community = await community_row(ctx, data.community_id)
    changes = given_changes(data, target=CommunityPath)
    if changes.get("slug", community.slug) != community.slug:
        await _claim_slug(ctx, changes["slug"])
    try:
        await communities_storage.update_community(ctx.db, community=community, changes=changes, at=ctx.now())
    except ConstraintViolation:
        # A concurrent write took the same slug first.
        raise _slug_taken(community.slug) from None
    return CommunityResult(community=_community_public(community))


@operation(
    title="Delete community",
    permission=Permission.COMMUNITIES_WRITE,
    http=("DELETE", "/communities/{communityId}"),
    kind="delete",
    idempotent=False,
    events=("community.deleted",),
)
async def delete_community(ctx: OperationContext, data: CommunityPath) -> CommunityDeleted:
    """Delete a community and its threads, comments, members, media; counts them."""
    community = await community_row(ctx, data.community_id, lock=True)
    await communities_storage.lock_community_threads(ctx.db, community_id=community.id)
    threads, comments, members, media = await communities_storage.community_contents(
        ctx.db, community_id=community.id
    )
    await communities_storage.delete_community(ctx.db, community=community)
    return CommunityDeleted(
        id=community.id,
        threads_deleted=threads,
        comments_deleted=comments,
        members_removed=members,
        media_deleted=media,
    )


# --- members ---


class MemberUser(OutputModel):
    id: str
    name: str
    email: str
    avatar_url: str | None


class MemberPublic(OutputModel):
    id: str
    user_id: str
    role: str
    joined_at: UtcDatetime
    updated_at: UtcDatetime
    user: MemberUser


class MemberResult(OutputModel):
    member: MemberPublic


async def _members_public(ctx: OperationContext, rows: list[Member]) -> list[MemberPublic]:
    users = await communities_storage.users_by_id(ctx.db, (row.user_id for row in rows))
    return [_member_public(row, users[row.user_id]) for row in rows]


def _member_public(member: Member, user: User) -> MemberPublic:
    return MemberPublic(
        id=member.id,
        user_id=member.user_id,
        role=member.role,
        joined_at=member.joined_at,
        updated_at=member.updated_at,
        user=MemberUser.model_validate(user, from_attributes=True),
    )


class AddMemberInput(CommunityPath):
    user_id: Id
    role: MemberRole = "member"


class RemoveMemberInput(CommunityPath):
    user_id: Id


@operation(
    title="Add member",
    permission=Permission.COMMUNITIES_WRITE,
    http=("POST", "/communities/{communityId}/members", 201),
    kind="write",
    events=("member.added",),
)
async def add_member(ctx: OperationContext, data: AddMemberInput) -> MemberResult:
    """Add a student or staff user to a community, to post (twice: conflict)."""
    community = await community_row(ctx, data.community_id)
    user = await producer_user(ctx, data.user_id)
    if await communities_storage.get_member(ctx.db, community_id=community.id, user_id=user.id) is not None:
        raise Conflict(f"User {user.id} is already a member of this community")
    try:
        member = await communities_storage.add_member(
            ctx.db, community_id=community.id, user_id=user.id, role=data.role, at=ctx.now()
        )
    except ConstraintViolation:
        raise Conflict(f"User {user.id} is already a member of this community") from None
    return MemberResult(member=_member_public(member, user))


@operation(
    title="List members",
    permission=Permission.COMMUNITIES_READ,
    http=("GET", "/communities/{communityId}/members"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def list_members(ctx: OperationContext, data: ListMembersInput) -> Page[MemberPublic]:
    """A community's members, oldest first. Paginated."""
    community = await community_row(ctx, data.community_id)
    statement = communities_storage.members_query(community_id=community.id, user_id=data.user_id)
    return await paged(ctx.db, statement, query=data, convert_page=partial(_members_public, ctx))


@operation(
    title="Remove member",
    permission=Permission.COMMUNITIES_WRITE,
    http=("DELETE", "/communities/{communityId}/members"),
    kind="delete",
    idempotent=False,
    events=("member.removed",),
)
async def remove_member(ctx: OperationContext, data: RemoveMemberInput) -> Deleted:
    """Remove a user from a community; their posts stay."""
    community = await community_row(ctx, data.community_id)
    member = await communities_storage.get_member(ctx.db, community_id=community.id, user_id=data.user_id)
    if member is None:
        raise NotFound("Member not found: this user is not a member of the community")
    await communities_storage.remove_member(ctx.db, member=member)
    return Deleted(id=member.id)


# --- media ---


class MediaPublic(OutputModel):
    id: str
    community_id: str
    type: str
    title: str
    description: str | None
    url: str
    file_name: str
    file_size: int
    mime_type: str | None
    thumbnail_url: str | None
    duration: int | None
    uploaded_by: str
    created_at: UtcDatetime


class MediaResult(OutputModel):
    media: MediaPublic


def _media_public(media: Media) -> MediaPublic:
    return MediaPublic.model_validate(media, from_attributes=True)


class AddMediaInput(CommunityPath):
    type: MediaType
    title: Name
    description: _MediaDescription | None = None
    url: WebUrl = Field(description="http(s) URL.")
    file_name: _FileText
    file_size: int = Field(ge=0, le=MAX_FILE_SIZE, description="Bytes.")
    mime_type: _FileText | None = None
    thumbnail_url: WebUrl | None = None
    duration: Count | None = Field(default=None, description="Seconds, for video.")
    user_id: Id = Field(description="The uploader.")


class ListMediaInput(CommunityPathPage):
    type: MediaType | None = None


@operation(
    title="Add media",
    permission=Permission.COMMUNITIES_WRITE,
    http=("POST", "/communities/{communityId}/media", 201),
    kind="write",
    events=("media.added",),
)
async def add_media(ctx: OperationContext, data: AddMediaInput) -> MediaResult:
    """Add a video, file or image, by URL, to a community."""
    community = await community_row(ctx, data.community_id)
    user = await producer_user(ctx, data.user_id)
    fields = data.model_dump(exclude={"community_id", "user_id"})
    media = await communities_storage.add_media(
        ctx.db, community_id=community.id, uploaded_by=user.id, at=ctx.now(), **fields
    )
    return MediaResult(media=_media_public(media))


@operation(
    title="List media",
    permission=Permission.COMMUNITIES_READ,
    http=("GET", "/communities/{communityId}/media"),
    kind="read",
)
async def list_media(ctx: OperationContext, data: ListMediaInput) -> Page[MediaPublic]:
    """A community's media, newest first. Paginated."""
    community = await community_row(ctx, data.community_id)
    statement = communities_storage.media_query(community_id=community.id, media_type=data.type)
    return await paged(ctx.db, statement, query=data, convert=_media_public)
