"""SQLModel tables. Every tenant-owned row carries `producer_id`; timestamps are timezone-aware UTC.

Deletes cascade in the database (`ON DELETE CASCADE`), so a parent's delete removes
its children in the same statement and no Python-side walk can leave orphans.

The database refuses what the API refuses, whoever writes the row: each table's CHECK
constraints apply the rules of `storage.rules` (enums, bounds, slug and email shapes, non-blank
names), and every bounded text column gets `ck_<table>_<column>_length` (SQLite does not enforce
VARCHAR lengths). A change to any of them needs a migration.
"""

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
    column,
    text,
)
from sqlmodel import Field, SQLModel

from storage.ids import utcnow
from storage.rules import (
    AMOUNT,
    BOOLEAN,
    COUNT,
    EMAIL,
    FILE_SIZE,
    LEVELS,
    MEDIA_TYPES,
    MEMBER_ROLES,
    NOT_BLANK,
    SLUG,
    USER_ROLES,
    VIDEO_TYPES,
    all_or_none_set,
    check,
    checks,
    max_length,
    one_of,
)

__all__ = [
    "IDENTITIES",
    "OWNER_EMAIL_INDEX",
    "ROLLUP_TABLES",
    "Achievement",
    "ApiKey",
    "AuditEvent",
    "Category",
    "Certificate",
    "Comment",
    "Community",
    "CommunityDay",
    "CommunityPoster",
    "Course",
    "CourseActivity",
    "CourseDay",
    "Enrollment",
    "Event",
    "EventCounter",
    "IdempotencyRecord",
    "LearningDay",
    "LearningGap",
    "Lesson",
    "LessonProgress",
    "LessonTotal",
    "LoginFailure",
    "Media",
    "Member",
    "OAuthClient",
    "OAuthCode",
    "OAuthGrant",
    "OAuthToken",
    "Producer",
    "RateLimitWindow",
    "SchoolDay",
    "Section",
    "SignIn",
    "Thread",
    "UnansweredThread",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
]

metadata = SQLModel.metadata


OWNER_EMAIL_INDEX = "uq_users_owner_email"
"""Owner emails are unique among owners platform-wide: an owner's email is a producer's login."""


class _Table(SQLModel):
    """The base of every table model, which names its table with a plain string: SQLModel declares
    `__tablename__` as the `declared_attr` that derives a default name, so a type checker would refuse
    that string on each table (fastapi/sqlmodel#98)."""

    __table__: ClassVar[Table]  # set by SQLModel on each table model
    __tablename__: ClassVar[str]  # pyright: ignore[reportIncompatibleVariableOverride]  # SQLModel types it as a declared_attr (sqlmodel#98)


def _fk(target: str, *, index: bool = True, unique: bool | None = None, primary_key: bool = False) -> Column:
    """A non-null foreign key that cascades deletes from its parent."""
    foreign_key = ForeignKey(target, ondelete="CASCADE")
    return Column(
        String(40), foreign_key, nullable=False, index=index, unique=unique, primary_key=primary_key
    )


class Producer(_Table, table=True):
    """A tenant: owns courses, communities, users and API keys."""

    __tablename__ = "producers"
    __table_args__ = (*checks("producers", name=NOT_BLANK),)

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class User(_Table, table=True):
    """A person or bot of one producer: its owner, staff and bots, and its students."""

    __tablename__ = "users"
    __table_args__ = (
        # Emails are unique per producer, never platform-wide: a global check would
        # tell one tenant which addresses another tenant has.
        UniqueConstraint("producer_id", "email_normalized", name="uq_users_producer_email"),
        Index("ix_users_producer_role_created", "producer_id", "role", "created_at", "id"),
        Index("ix_users_producer_updated", "producer_id", "updated_at", "id"),  # updatedAfter (sync)
        # ...but an owner's email is the login of a producer session, so it names one owner.
        Index(
            OWNER_EMAIL_INDEX,
            "email_normalized",
            unique=True,
            sqlite_where=text("role = 'owner'"),
            postgresql_where=text("role = 'owner'"),
        ),
        *checks("users", name=NOT_BLANK, email=EMAIL, email_normalized=EMAIL, role=one_of(USER_ROLES)),
    )

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id", index=False))
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    email_normalized: str = Field(max_length=320)
    password_hash: str | None = Field(default=None, max_length=200)
    avatar_url: str | None = Field(default=None, max_length=2048)
    bio: str | None = Field(default=None, max_length=2000)
    role: str = Field(max_length=20)  # storage.rules.USER_ROLES
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


IDENTITIES = ("full", "pseudonymous")
"""What a credential (an API key, an OAuth grant) or a webhook endpoint sees of students: their
names, emails, avatars and bios, or a stable pseudonym in their place (`tools.core.pseudonyms`)."""


def _identities() -> str:
    return Field(default="full", max_length=20, sa_column_kwargs={"server_default": "full"})  # type: ignore[return-value]


class ApiKey(_Table, table=True):
    """An API key. Only the SHA-256 of the secret is kept, plus a short prefix for display."""

    __tablename__ = "api_keys"
    __table_args__ = (*checks("api_keys", name=NOT_BLANK, identities=one_of(IDENTITIES)),)

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id"))
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=20)
    permissions: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    identities: str = _identities()


class SignIn(_Table, table=True):
    """A producer owner's login session, for API key management. Only the token's SHA-256 is kept.

    Sessions live in the database so that any server process accepts a session another one created.
    """

    __tablename__ = "producer_sessions"

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id"))
    user_id: str = Field(sa_column=_fk("users.id"))
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    ended_at: datetime | None = None


OAUTH_CLIENT_SOURCES = ("registration", "metadata_document")
OAUTH_TOKEN_KINDS = ("access", "refresh")
OAUTH_CLIENT_ID_LENGTH = 2048
"""A client id is a registered client's UUID or a client ID metadata document's https URL."""


def _client_fk() -> Column:
    return Column(
        String(OAUTH_CLIENT_ID_LENGTH),
        ForeignKey("oauth_clients.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


class OAuthClient(_Table, table=True):
    """An application that may ask a producer for access over OAuth: registered by Dynamic Client
    Registration, or known by its client ID metadata document (then `id` is the document's URL and
    `information` the copy fetched at `fetched_at`). Platform-wide: a client belongs to no producer
    until one grants it access. A registered client's secret is kept only as its SHA-256."""

    __tablename__ = "oauth_clients"
    __table_args__ = (*checks("oauth_clients", name=NOT_BLANK, source=one_of(OAUTH_CLIENT_SOURCES)),)

    id: str = Field(primary_key=True, max_length=OAUTH_CLIENT_ID_LENGTH)
    source: str = Field(max_length=20)
    name: str = Field(max_length=200)
    secret_hash: str | None = Field(default=None, max_length=64)
    information: dict = Field(sa_column=Column(JSON, nullable=False))
    """The client's metadata (RFC 7591) as the SDK models it, without the secret."""
    created_at: datetime = Field(default_factory=utcnow)
    fetched_at: datetime = Field(default_factory=utcnow)


class OAuthGrant(_Table, table=True):
    """A producer's consent to a client ("a connected app"): the permissions its tokens carry at
    most. Every code and token belongs to one grant; disconnecting (`revoked_at`) ends them all."""

    __tablename__ = "oauth_grants"
    __table_args__ = (*checks("oauth_grants", client_name=NOT_BLANK, identities=one_of(IDENTITIES)),)

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id"))
    user_id: str = Field(sa_column=_fk("users.id"))
    client_id: str = Field(sa_column=_client_fk())
    client_name: str = Field(max_length=200)
    redirect_uri: str = Field(max_length=2048)
    resource: str = Field(max_length=2048)
    permissions: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    identities: str = _identities()


class OAuthCode(_Table, table=True):
    """An authorization code, issued at consent and exchanged once for tokens (only its SHA-256 is kept)."""

    __tablename__ = "oauth_codes"
    __table_args__ = (*checks("oauth_codes", redirect_uri_explicit=BOOLEAN),)

    code_hash: str = Field(primary_key=True, max_length=64)
    grant_id: str = Field(sa_column=_fk("oauth_grants.id"))
    client_id: str = Field(max_length=OAUTH_CLIENT_ID_LENGTH)
    redirect_uri: str = Field(max_length=2048)
    redirect_uri_explicit: bool
    code_challenge: str = Field(max_length=128)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    expires_at: datetime
    used_at: datetime | None = None


class OAuthToken(_Table, table=True):
    """An access or refresh token of a grant (only its SHA-256 is kept). A refresh token is used
    once: `used_at` marks its rotation, and presenting it again revokes the whole grant."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (*checks("oauth_tokens", kind=one_of(OAUTH_TOKEN_KINDS)),)

    token_hash: str = Field(primary_key=True, max_length=64)
    grant_id: str = Field(sa_column=_fk("oauth_grants.id"))
    kind: str = Field(max_length=10)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class Category(_Table, table=True):
    """A course category. Platform-wide, seeded by the first migration."""

    __tablename__ = "categories"
    __table_args__ = (*checks("categories", name=NOT_BLANK, slug=SLUG, order=COUNT),)

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=100)
    slug: str = Field(max_length=100, unique=True)
    icon: str = Field(max_length=50)
    order: int = Field(default=0)


class Course(_Table, table=True):
    """A producer's course. Its slug is unique platform-wide: it is a public URL."""

    __tablename__ = "courses"
    __table_args__ = (
        Index("ix_courses_producer_created", "producer_id", "created_at", "id"),
        Index("ix_courses_producer_updated", "producer_id", "updated_at", "id"),  # updatedAfter (sync)
        *checks(
            "courses",
            title=NOT_BLANK,
            slug=SLUG,
            price=AMOUNT,
            is_free=BOOLEAN,
            level=one_of(LEVELS),
            published=BOOLEAN,
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id", index=False))
    # Categories are reference data that is never deleted: no cascade.
    category_id: str = Field(sa_column=Column(String(40), ForeignKey("categories.id"), nullable=False))
    title: str = Field(max_length=200)
    slug: str = Field(max_length=200, unique=True)
    description: str | None = Field(default=None, max_length=10000)
    short_description: str | None = Field(default=None, max_length=500)
    thumbnail_url: str | None = Field(default=None, max_length=2048)
    trailer_url: str | None = Field(default=None, max_length=2048)
    price: int = Field(default=0)
    is_free: bool = Field(default=False)
    level: str | None = Field(default=None, max_length=20)  # storage.rules.LEVELS
    published: bool = Field(default=False)
    published_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Section(_Table, table=True):
    """A chapter of a course. `order` is 0-based and dense within the course."""

    __tablename__ = "sections"
    __table_args__ = (
        Index("ix_sections_course_order", "course_id", "order"),
        *checks("sections", title=NOT_BLANK, order=COUNT),
    )

    id: str = Field(primary_key=True, max_length=40)
    course_id: str = Field(sa_column=_fk("courses.id", index=False))
    title: str = Field(max_length=200)
    order: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Lesson(_Table, table=True):
    """A lesson of a section. `order` is 0-based and dense within the section.

    `course_id` repeats the section's course so whole-course reads (curriculum, progress)
    need no join through sections. `video_url` is the embed URL; `video_*` the parsed metadata.
    """

    __tablename__ = "lessons"
    __table_args__ = (
        Index("ix_lessons_section_order", "section_id", "order"),
        *checks(
            "lessons",
            title=NOT_BLANK,
            duration=COUNT,
            video_type=one_of(VIDEO_TYPES),
            is_preview=BOOLEAN,
            order=COUNT,
        ),
        # A video is its embed URL, its type and the URL it was given, together (see video_columns).
        check("lessons", "video", all_or_none_set("video_url", "video_type", "video_original_url")),
    )

    id: str = Field(primary_key=True, max_length=40)
    section_id: str = Field(sa_column=_fk("sections.id", index=False))
    course_id: str = Field(sa_column=_fk("courses.id"))
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    duration: int = Field(default=0)
    # The embed URL: a direct link written without a scheme gains "https://".
    video_url: str | None = Field(default=None, max_length=2100)
    video_type: str | None = Field(default=None, max_length=20)  # storage.rules.VIDEO_TYPES
    video_id: str | None = Field(default=None, max_length=100)
    video_thumbnail_url: str | None = Field(default=None, max_length=2048)
    video_original_url: str | None = Field(default=None, max_length=2048)
    is_preview: bool = Field(default=False)
    order: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Community(_Table, table=True):
    """A discussion community of one producer: threads, members and media hang off it."""

    __tablename__ = "communities"
    __table_args__ = (
        Index("ix_communities_producer_created", "producer_id", "created_at", "id"),
        Index("ix_communities_producer_updated", "producer_id", "updated_at", "id"),  # updatedAfter (sync)
        *checks(
            "communities",
            name=NOT_BLANK,
            slug=SLUG,
            description=NOT_BLANK,
            is_free=BOOLEAN,
            price=AMOUNT,
            is_public=BOOLEAN,
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id", index=False))
    name: str = Field(max_length=200)
    slug: str = Field(max_length=100, unique=True)  # a public URL: unique platform-wide
    description: str | None = Field(default=None, max_length=10000)
    cover_image_url: str | None = Field(default=None, max_length=2048)
    is_free: bool = True
    price: int = 0
    is_public: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Member(_Table, table=True):
    """A user's membership of a community, with a role: member | moderator | admin."""

    __tablename__ = "community_members"
    __table_args__ = (
        UniqueConstraint("community_id", "user_id", name="uq_community_members_user"),
        Index("ix_community_members_community_joined", "community_id", "joined_at", "id"),
        Index("ix_community_members_community_updated", "community_id", "updated_at", "id"),
        *checks("community_members", role=one_of(MEMBER_ROLES)),
    )

    id: str = Field(primary_key=True, max_length=40)
    community_id: str = Field(sa_column=_fk("communities.id", index=False))
    user_id: str = Field(sa_column=_fk("users.id"))
    role: str = Field(max_length=20)
    joined_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    """Its role's last change (joining, at first)."""


class Thread(_Table, table=True):
    """A discussion thread. `comment_count` and `last_activity_at` move with its comments."""

    __tablename__ = "threads"
    __table_args__ = (
        # list_threads: pinned first, then newest activity.
        Index("ix_threads_community_order", "community_id", "pinned", "last_activity_at", "id"),
        Index("ix_threads_community_updated", "community_id", "updated_at", "id"),  # updatedAfter (sync)
        *checks("threads", title=NOT_BLANK, content=NOT_BLANK, pinned=BOOLEAN, comment_count=COUNT),
    )

    id: str = Field(primary_key=True, max_length=40)
    community_id: str = Field(sa_column=_fk("communities.id", index=False))
    author_id: str = Field(sa_column=_fk("users.id"))
    title: str = Field(max_length=200)
    content: str = Field(max_length=20000)
    pinned: bool = False
    comment_count: int = 0
    last_activity_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Comment(_Table, table=True):
    """A comment on a thread; with `parent_id`, a reply to another comment of the same thread.

    `parent_id` does not cascade: SQLite stops cascades 1000 levels deep, and reply chains
    can be deeper. A subtree is deleted in one statement (storage.communities.delete_comment_tree);
    a thread's delete reaches all its comments at once through `thread_id`.
    """

    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_thread_created", "thread_id", "created_at", "id"),
        Index("ix_comments_thread_updated", "thread_id", "updated_at", "id"),  # updatedAfter (sync)
        *checks("comments", content=NOT_BLANK),
    )

    id: str = Field(primary_key=True, max_length=40)
    thread_id: str = Field(sa_column=_fk("threads.id", index=False))
    parent_id: str | None = Field(
        default=None, sa_column=Column(String(40), ForeignKey("comments.id"), nullable=True, index=True)
    )
    author_id: str = Field(sa_column=_fk("users.id"))
    content: str = Field(max_length=20000)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Media(_Table, table=True):
    """A video, file or image shared in a community (stored elsewhere; this is its URL and metadata)."""

    __tablename__ = "community_media"
    __table_args__ = (
        Index("ix_community_media_community_created", "community_id", "created_at", "id"),
        Index("ix_community_media_community_type_created", "community_id", "type", "created_at", "id"),
        *checks(
            "community_media",
            type=one_of(MEDIA_TYPES),
            title=NOT_BLANK,
            description=NOT_BLANK,
            file_name=NOT_BLANK,
            file_size=FILE_SIZE,
            mime_type=NOT_BLANK,
            duration=COUNT,
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    community_id: str = Field(sa_column=_fk("communities.id", index=False))
    uploaded_by: str = Field(sa_column=_fk("users.id"))
    type: str = Field(max_length=10)  # storage.rules.MEDIA_TYPES
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    url: str = Field(max_length=2048)
    file_name: str = Field(max_length=255)
    file_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    mime_type: str | None = Field(default=None, max_length=255)
    thumbnail_url: str | None = Field(default=None, max_length=2048)
    duration: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class RateLimitWindow(_Table, table=True):
    """Requests one caller made in one fixed window (PostgreSQL only; SQLite counts in memory).

    `key_id` is the API key's id or the producer session's id: no foreign key, since it names
    either. A caller's finished windows go when its next window starts.
    """

    __tablename__ = "rate_limit_windows"

    key_id: str = Field(sa_column=Column(String(40), primary_key=True))
    window_start: datetime = Field(primary_key=True)
    count: int = 0


class LoginFailure(_Table, table=True):
    """One failed sign-in, counted by the login throttle against a bucket: its account and its address.

    `bucket` is a SHA-256 of the account's email or of the client address, so this table names
    no one. Rows older than the throttle's window are pruned as new failures arrive. Kept in the
    database so every server process sees the same count. OAuth's registration throttle
    (`tools.domains.oauth.RegistrationThrottle`) counts client registrations here the same way,
    under buckets of its own.
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_bucket_time", "bucket", "failed_at"),)

    id: str = Field(primary_key=True, max_length=40)
    bucket: str = Field(max_length=64)
    failed_at: datetime = Field(default_factory=utcnow)


class AuditEvent(_Table, table=True):
    """A write operation: who (key), what (operation, target ids), when, and the outcome.

    Only ids are recorded, never argument values, so no secret or password can land here.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_producer_time", "producer_id", "occurred_at", "id"),
        Index("ix_audit_events_producer_operation_time", "producer_id", "operation", "occurred_at"),
        Index("ix_audit_events_producer_key_time", "producer_id", "key_id", "occurred_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id", index=False))
    occurred_at: datetime = Field(default_factory=utcnow)
    key_id: str | None = Field(default=None, max_length=40)
    key_name: str | None = Field(default=None, max_length=200)
    operation: str = Field(max_length=60)
    target_ids: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    outcome: str = Field(max_length=30)  # "ok" or an error code


class EventCounter(_Table, table=True):
    """A producer's last event sequence number. Its row is locked by each writing transaction that
    records events, so sequences commit in order."""

    __tablename__ = "event_counters"

    producer_id: str = Field(sa_column=_fk("producers.id", index=False, primary_key=True))
    last_sequence: int = Field(sa_column=Column(BigInteger, nullable=False))


class Event(_Table, table=True):
    """Something that changed, as the feed and webhooks tell it: written in the transaction of the
    change, numbered by the producer's `sequence` (1, 2, 3, ... with no gaps among committed
    events), its `data` the changed resource as the API returns it."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("producer_id", "sequence", name="uq_events_producer_sequence"),
        Index("ix_events_producer_time", "producer_id", "occurred_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id", index=False))
    sequence: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=40)
    occurred_at: datetime = Field(default_factory=utcnow)
    key_id: str | None = Field(default=None, max_length=40)
    key_name: str | None = Field(default=None, max_length=200)
    course_id: str | None = Field(default=None, max_length=40)
    community_id: str | None = Field(default=None, max_length=40)
    student_id: str | None = Field(default=None, max_length=40)
    data: dict = Field(sa_column=Column(JSON, nullable=False))


WEBHOOK_DELIVERY_STATES = ("pending", "succeeded", "failed")


class WebhookEndpoint(_Table, table=True):
    """Where a producer wants its events POSTed, signed per Standard Webhooks with `secret` (kept
    as it is: signing needs it). An endpoint that keeps failing is disabled with the reason."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        *checks("webhook_endpoints", url=NOT_BLANK, enabled=BOOLEAN, identities=one_of(IDENTITIES)),
    )

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id"))
    url: str = Field(max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    """The types it receives; empty: every type."""
    enabled: bool = True
    secret: str = Field(max_length=100)
    disabled_reason: str | None = Field(default=None, max_length=500)
    failing_since: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    identities: str = _identities()


class WebhookDelivery(_Table, table=True):
    """One event for one endpoint: written with the event, then attempted by a delivery worker
    until it succeeds or its retries run out. An endpoint's deliveries go in sequence order: only
    the oldest pending one of an endpoint is attempted. A worker holds a delivery by `lease_until`
    while it sends; a worker that dies leaves the lease to expire, and the delivery is sent again."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        *checks("webhook_deliveries", state=one_of(WEBHOOK_DELIVERY_STATES), attempts=COUNT),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_sequence", "endpoint_id", "sequence"),
    )

    id: str = Field(primary_key=True, max_length=40)
    endpoint_id: str = Field(sa_column=_fk("webhook_endpoints.id", index=False))
    event_id: str = Field(sa_column=_fk("events.id"))
    sequence: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    last_attempt_at: datetime | None = None
    response_status: int | None = None
    response_excerpt: str | None = Field(default=None, max_length=500)
    latency_ms: int | None = None
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class Enrollment(_Table, table=True):
    """A student's enrollment in a course of the same producer; at most one per (student, course).

    `completed_at` is set once, when the enrollment first reaches 100%, and stays set even if
    lessons added later lower the percent.
    """

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("student_id", "course_id", name="uq_enrollments_student_course"),
        Index("ix_enrollments_producer_enrolled", "producer_id", "enrolled_at", "id"),
        Index("ix_enrollments_course_enrolled", "course_id", "enrolled_at", "id"),
        Index("ix_enrollments_producer_updated", "producer_id", "updated_at", "id"),  # updatedAfter (sync)
        # find_students_needing_attention of one course: its enrollments, longest silent first.
        Index("ix_enrollments_course_updated", "course_id", "updated_at", "id"),
        Index("ix_enrollments_producer_completed", "producer_id", "completed_at"),  # school report
    )

    id: str = Field(primary_key=True, max_length=40)
    producer_id: str = Field(sa_column=_fk("producers.id", index=False))
    student_id: str = Field(sa_column=_fk("users.id", index=False))
    course_id: str = Field(sa_column=_fk("courses.id", index=False))
    enrolled_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    """Its progress's last change (enrolling, at first)."""
    lessons_started: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    """Its lesson progress rows. Kept by the database's triggers (see the rollups below): never
    written by the application, and stale on an instance loaded before its progress changed."""
    lessons_completed: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    """Its lesson progress rows marked completed; kept like `lessons_started`."""


class LessonProgress(_Table, table=True):
    """An enrollment's progress on one lesson of its course: one row per (enrollment, lesson)."""

    __tablename__ = "lesson_progress"
    __table_args__ = (
        Index("ix_lesson_progress_completed_at", "completed_at"),  # school report: lessons completed
        *checks("lesson_progress", completed=BOOLEAN, watched_seconds=COUNT),
    )

    enrollment_id: str = Field(sa_column=_fk("enrollments.id", index=False, primary_key=True))
    # Indexed on its own too: deleting a lesson looks its progress up by lesson.
    lesson_id: str = Field(sa_column=_fk("lessons.id", primary_key=True))
    completed: bool = False
    watched_seconds: int = 0
    completed_at: datetime | None = None


class Certificate(_Table, table=True):
    """Issued once per enrollment, when it first reaches 100%; `verification_code` is unguessable."""

    __tablename__ = "certificates"
    __table_args__ = (Index("ix_certificates_issued_at", "issued_at"),)  # school report

    id: str = Field(primary_key=True, max_length=40)
    enrollment_id: str = Field(sa_column=_fk("enrollments.id", index=False, unique=True))
    verification_code: str = Field(max_length=40, unique=True)
    issued_at: datetime = Field(default_factory=utcnow)


class LearningDay(_Table, table=True):
    """A UTC day on which a student recorded learning progress: streaks are runs of these."""

    __tablename__ = "learning_days"
    __table_args__ = (Index("ix_learning_days_day", "day"),)  # school report: active learners

    student_id: str = Field(sa_column=_fk("users.id", index=False, primary_key=True))
    day: date = Field(primary_key=True)


class Achievement(_Table, table=True):
    """An achievement a student unlocked (`code` from the rule table in tools.domains.achievements), once."""

    __tablename__ = "achievements"

    student_id: str = Field(sa_column=_fk("users.id", index=False, primary_key=True))
    code: str = Field(primary_key=True, max_length=40)
    unlocked_at: datetime = Field(default_factory=utcnow)


class IdempotencyRecord(_Table, table=True):
    """A create run under an idempotency key: a retry with the same key and the same arguments
    gets `result` back instead of a second create. Kept for a day (`expires_at`).

    `caller` is who may replay it: an API key (`key_...`), an OAuth grant or a producer session.
    The record is written in the create's own transaction, before the create's rows: a second
    transaction with the same key waits on the primary key until the first ends."""

    __tablename__ = "idempotency_records"
    __table_args__ = (Index("ix_idempotency_records_expires", "expires_at"),)

    caller: str = Field(primary_key=True, max_length=60)
    key: str = Field(primary_key=True, max_length=200)
    producer_id: str = Field(sa_column=_fk("producers.id"))
    operation: str = Field(max_length=100)
    request_hash: str = Field(max_length=64)
    result: dict = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


def _length_checks() -> None:
    """`ck_<table>_<column>_length` on every bounded text column: SQLite ignores VARCHAR(n)."""
    for table in metadata.tables.values():
        for bounded in table.columns:
            if length := getattr(bounded.type, "length", None):  # String, and SQLModel's AutoString
                table.append_constraint(
                    check(table.name, f"{bounded.name}_length", max_length(length)(column(bounded.name)))
                )


_length_checks()


class CredentialRevision(_Table, table=True):
    """One row (id 1), made by the migration: a number every revocation of a credential (an API
    key, an OAuth grant) raises in its own transaction.

    Server processes keep the credentials they verified under the number they read
    (`storage.credentials`) and trust them only while it stays the same: a revocation in any
    process makes every process check again on its next call."""

    __tablename__ = "credential_revision"

    id: int = Field(primary_key=True)
    revision: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


# ---- Rollups: counts the insight operations read instead of counting rows --------------------------
#
# Kept by the database itself: triggers made by migration 0017 (`storage/migrations/versions/
# 0017_insight_rollups.py`) change them in the same transaction, and on the same rows, as every
# insert, update and delete of what they count, whichever code path (or cascade) makes it. The
# application never writes them. Each is keyed by a tenant-owned parent (a course, a lesson, a
# community, a producer) whose delete cascades to it; days are UTC days. Defined after
# `_length_checks`: their ids are copied from parent rows whose own checks bound them.


def _count() -> Column:
    return Column(BigInteger, nullable=False, server_default=text("0"))


class CourseDay(_Table, table=True):
    """One course's day: enrollments made (by `enrolled_at`), lessons completed (by a progress row's
    `completed_at`), enrollments completed and their enrolled-to-completed seconds (by
    `completed_at`), certificates issued (by `issued_at`); rows that still exist."""

    __tablename__ = "course_days"

    course_id: str = Field(sa_column=_fk("courses.id", index=False, primary_key=True))
    day: date = Field(primary_key=True)
    enrollments: int = Field(default=0, sa_column=_count())
    lessons_completed: int = Field(default=0, sa_column=_count())
    courses_completed: int = Field(default=0, sa_column=_count())
    completion_seconds: int = Field(default=0, sa_column=_count())
    certificates: int = Field(default=0, sa_column=_count())


class CourseActivity(_Table, table=True):
    """How many of a course's enrollments were last active on `day` (the day of their `updated_at`),
    by whether they started (`lessons_started > 0`) and how many lessons they completed: the
    silences `find_students_needing_attention` counts and the active learners of a course."""

    __tablename__ = "course_activity"

    course_id: str = Field(sa_column=_fk("courses.id", index=False, primary_key=True))
    day: date = Field(primary_key=True)
    started: int = Field(primary_key=True)
    lessons_completed: int = Field(primary_key=True)
    enrollments: int = Field(default=0, sa_column=_count())


class LessonTotal(_Table, table=True):
    """A lesson's progress rows: how many, how many completed, and their watched seconds."""

    __tablename__ = "lesson_totals"

    lesson_id: str = Field(sa_column=_fk("lessons.id", index=False, primary_key=True))
    started: int = Field(default=0, sa_column=_count())
    completed: int = Field(default=0, sa_column=_count())
    watched_seconds: int = Field(default=0, sa_column=_count())


class SchoolDay(_Table, table=True):
    """A producer's day, as `CourseDay` and `CommunityDay` count it over all its courses and
    communities (the school report reads a row a day, however many courses there are): students
    registered (by `created_at`), enrollments made, lessons completed, courses completed,
    certificates issued, threads and comments made; rows that still exist."""

    __tablename__ = "school_days"

    producer_id: str = Field(sa_column=_fk("producers.id", index=False, primary_key=True))
    day: date = Field(primary_key=True)
    new_students: int = Field(default=0, sa_column=_count())
    enrollments: int = Field(default=0, sa_column=_count())
    lessons_completed: int = Field(default=0, sa_column=_count())
    courses_completed: int = Field(default=0, sa_column=_count())
    certificates: int = Field(default=0, sa_column=_count())
    threads: int = Field(default=0, sa_column=_count())
    comments: int = Field(default=0, sa_column=_count())


class LearningGap(_Table, table=True):
    """How many of a producer's learning days fall on `day` with the student's previous learning
    day on `previous_day` (0001-01-01: none before). The distinct students with a learning day in
    [a, b) are the learning days in [a, b) whose previous day is before a: a sum over the window's
    days, however many students learned."""

    __tablename__ = "learning_gaps"

    producer_id: str = Field(sa_column=_fk("producers.id", index=False, primary_key=True))
    day: date = Field(primary_key=True)
    previous_day: date = Field(primary_key=True)
    learners: int = Field(default=0, sa_column=_count())


class CommunityDay(_Table, table=True):
    """A community's day: members who joined (by `joined_at`), threads and comments made (by
    `created_at`); rows that still exist. Its members now are the sum over all its days."""

    __tablename__ = "community_days"

    community_id: str = Field(sa_column=_fk("communities.id", index=False, primary_key=True))
    day: date = Field(primary_key=True)
    new_members: int = Field(default=0, sa_column=_count())
    threads: int = Field(default=0, sa_column=_count())
    comments: int = Field(default=0, sa_column=_count())


class CommunityPoster(_Table, table=True):
    """A user's threads and comments in a community, all time; `posts` is their sum."""

    __tablename__ = "community_posters"
    __table_args__ = (Index("ix_community_posters_community_posts", "community_id", "posts", "user_id"),)

    community_id: str = Field(sa_column=_fk("communities.id", index=False, primary_key=True))
    user_id: str = Field(sa_column=_fk("users.id", primary_key=True))
    threads: int = Field(default=0, sa_column=_count())
    comments: int = Field(default=0, sa_column=_count())
    posts: int = Field(default=0, sa_column=_count())


class UnansweredThread(_Table, table=True):
    """A thread no one but its author has commented on, with its community and creation time."""

    __tablename__ = "unanswered_threads"
    __table_args__ = (
        Index("ix_unanswered_threads_community_created", "community_id", "created_at", "thread_id"),
    )

    thread_id: str = Field(sa_column=_fk("threads.id", index=False, primary_key=True))
    community_id: str = Field(sa_column=_fk("communities.id", index=False))
    created_at: datetime


ROLLUP_TABLES = frozenset(
    model.__tablename__
    for model in (
        CourseDay,
        CourseActivity,
        LessonTotal,
        SchoolDay,
        LearningGap,
        CommunityDay,
        CommunityPoster,
        UnansweredThread,
    )
)
"""The tables only triggers write (see above)."""
