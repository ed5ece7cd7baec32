"""Valid rows of every table, written straight to the database (as another tool would)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Table, insert

from storage.ids import utcnow
from storage.tables import (
    Achievement,
    ApiKey,
    AuditEvent,
    Category,
    Certificate,
    Comment,
    Community,
    Course,
    Enrollment,
    Event,
    EventCounter,
    IdempotencyRecord,
    LearningDay,
    Lesson,
    LessonProgress,
    LoginFailure,
    Media,
    Member,
    OAuthClient,
    OAuthCode,
    OAuthGrant,
    OAuthToken,
    Producer,
    RateLimitWindow,
    Section,
    SignIn,
    Thread,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = ["insert_rows", "valid_rows"]


def valid_rows(n: str) -> list[tuple[Table, dict]]:
    """One valid row of every table, parents first; `n` keeps ids and unique values apart."""
    now = utcnow()
    producer, owner, student, course = f"prod_{n}", f"user_owner{n}", f"user_student{n}", f"course_{n}"
    section, lesson, community, thread, enrollment = (
        f"section_{n}",
        f"lesson_{n}",
        f"comm_{n}",
        f"thread_{n}",
        f"enr_{n}",
    )
    stamps = {"created_at": now, "updated_at": now}
    rows = [
        (Producer, {"id": producer, "name": "Academy", "created_at": now}),
        (
            User,
            {
                "id": owner,
                "producer_id": producer,
                "name": "Owner",
                "email": f"owner{n}@example.com",
                "email_normalized": f"owner{n}@example.com",
                "role": "owner",
                **stamps,
            },
        ),
        (
            User,
            {
                "id": student,
                "producer_id": producer,
                "name": "Student",
                "email": f"student{n}@example.com",
                "email_normalized": f"student{n}@example.com",
                "role": "student",
                **stamps,
            },
        ),
        (
            ApiKey,
            {
                "id": f"key_{n}",
                "producer_id": producer,
                "name": "key",
                "key_hash": f"hash{n}",
                "prefix": "blk_x",
                "permissions": ["*"],
                "created_at": now,
            },
        ),
        (
            SignIn,
            {
                "id": f"sess_{n}",
                "producer_id": producer,
                "user_id": owner,
                "token_hash": f"token{n}",
                "created_at": now,
                "expires_at": now,
            },
        ),
        (
            Category,
            {"id": f"cat_{n}", "name": "Category", "slug": f"category-{n}", "icon": "folder", "order": 0},
        ),
        (
            Course,
            {
                "id": course,
                "producer_id": producer,
                "category_id": f"cat_{n}",
                "title": "Course",
                "slug": f"course-{n}",
                "price": 0,
                "is_free": True,
                "level": "beginner",
                "published": False,
                **stamps,
            },
        ),
        (Section, {"id": section, "course_id": course, "title": "Section", "order": 0, **stamps}),
        (
            Lesson,
            {
                "id": lesson,
                "section_id": section,
                "course_id": course,
                "title": "Lesson",
                "duration": 60,
                "video_url": "https://www.youtube.com/embed/abc123",
                "video_type": "youtube",
                "video_id": "abc123",
                "video_original_url": "https://youtu.be/abc123",
                "is_preview": False,
                "order": 0,
                **stamps,
            },
        ),
        (
            Community,
            {
                "id": community,
                "producer_id": producer,
                "name": "Community",
                "slug": f"community-{n}",
                "description": "About",
                "is_free": True,
                "price": 0,
                "is_public": True,
                **stamps,
            },
        ),
        (
            Member,
            {
                "id": f"mem_{n}",
                "community_id": community,
                "user_id": student,
                "role": "member",
                "joined_at": now,
                "updated_at": now,
            },
        ),
        (
            Thread,
            {
                "id": thread,
                "community_id": community,
                "author_id": student,
                "title": "Thread",
                "content": "Hello",
                "pinned": False,
                "comment_count": 0,
                "last_activity_at": now,
                **stamps,
            },
        ),
        (Comment, {"id": f"cmt_{n}", "thread_id": thread, "author_id": student, "content": "Hi", **stamps}),
        (
            Media,
            {
                "id": f"media_{n}",
                "community_id": community,
                "uploaded_by": student,
                "type": "file",
                "title": "Notes",
                "description": "PDF",
                "url": "https://example.com/a.pdf",
                "file_name": "a.pdf",
                "file_size": 10,
                "mime_type": "application/pdf",
                "duration": 0,
                "created_at": now,
            },
        ),
        (
            OAuthClient,
            {
                "id": f"https://client{n}.example.com/oauth.json",
                "source": "metadata_document",
                "name": "App",
                "information": {},
                "created_at": now,
                "fetched_at": now,
            },
        ),
        (
            OAuthGrant,
            {
                "id": f"app_{n}",
                "producer_id": producer,
                "user_id": owner,
                "client_id": f"https://client{n}.example.com/oauth.json",
                "client_name": "App",
                "redirect_uri": "https://client.example.com/cb",
                "resource": "https://school.example.com/mcp",
                "permissions": ["courses:read"],
                "created_at": now,
            },
        ),
        (
            OAuthCode,
            {
                "code_hash": f"code{n}",
                "grant_id": f"app_{n}",
                "client_id": f"https://client{n}.example.com/oauth.json",
                "redirect_uri": "https://client.example.com/cb",
                "redirect_uri_explicit": True,
                "code_challenge": "x" * 43,
                "scopes": ["courses:read"],
                "expires_at": now,
            },
        ),
        (
            OAuthToken,
            {
                "token_hash": f"token{n}",
                "grant_id": f"app_{n}",
                "kind": "access",
                "scopes": ["courses:read"],
                "created_at": now,
                "expires_at": now,
            },
        ),
        (RateLimitWindow, {"key_id": f"key_{n}", "window_start": now, "count": 1}),
        (LoginFailure, {"id": f"fail_{n}", "bucket": f"bucket{n}", "failed_at": now}),
        (
            AuditEvent,
            {
                "id": f"audit_{n}",
                "producer_id": producer,
                "occurred_at": now,
                "operation": "create_course",
                "target_ids": {},
                "outcome": "ok",
            },
        ),
        (EventCounter, {"producer_id": producer, "last_sequence": 1}),
        (
            IdempotencyRecord,
            {
                "caller": f"key_{n}",
                "key": "retry-1",
                "producer_id": producer,
                "operation": "create_course",
                "request_hash": "0" * 64,
                "result": {"course": {"id": course}},
                "created_at": now,
                "expires_at": now,
            },
        ),
        (
            Event,
            {
                "id": f"evt_{n}",
                "producer_id": producer,
                "sequence": 1,
                "type": "course.created",
                "occurred_at": now,
                "course_id": course,
                "data": {"id": course},
            },
        ),
        (
            WebhookEndpoint,
            {
                "id": f"wh_{n}",
                "producer_id": producer,
                "url": "https://hooks.example.com/blohko",
                "event_types": [],
                "enabled": True,
                "secret": "whsec_c2VjcmV0",
                **stamps,
            },
        ),
        (
            WebhookDelivery,
            {
                "id": f"whd_{n}",
                "endpoint_id": f"wh_{n}",
                "event_id": f"evt_{n}",
                "sequence": 1,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        ),
        (
            Enrollment,
            {
                "id": enrollment,
                "producer_id": producer,
                "student_id": student,
                "course_id": course,
                "enrolled_at": now,
                "updated_at": now,
            },
        ),
        (
            LessonProgress,
            {"enrollment_id": enrollment, "lesson_id": lesson, "completed": False, "watched_seconds": 0},
        ),
        (
            Certificate,
            {
                "id": f"cert_{n}",
                "enrollment_id": enrollment,
                "verification_code": f"code{n}",
                "issued_at": now,
            },
        ),
        (LearningDay, {"student_id": student, "day": date(2026, 1, 1)}),
        (Achievement, {"student_id": student, "code": "first_lesson", "unlocked_at": now}),
    ]
    return [(model.__table__, values) for model, values in rows]


async def insert_rows(connection, rows: list[tuple[Table, dict]]) -> None:
    for table, values in rows:
        await connection.execute(insert(table).values(values))
