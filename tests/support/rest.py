"""REST test helpers: the app over a test store, a client, a seeded tenant, and example arguments
for every catalog operation (shared by the endpoint matrix and the REST-vs-MCP parity test)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.types import ASGIApp

from server.http_app import api_document, create_http_app
from server.mcp_app import Runtime
from server.sample_data import Sample, create_sample_data, operate
from server.settings import Settings
from storage.engine import Store
from storage.ids import utcnow
from tests.support.community_factories import MEDIA
from tests.support.factories import (
    DEFAULT_CATEGORY_ID,
    PUBLIC_HOOK_URL,
    Tenant,
    add_webhook,
    course_body,
    principal_of,
)
from tools.core.catalog import Operation
from tools.core.context import Clock

API = "http://127.0.0.1/api/v1"
_BODY_METHODS = {"POST", "PATCH", "PUT"}


def http_app(store: Store, *, clock: Clock = utcnow, **settings: Any) -> Starlette:
    """The HTTP app configured by `settings` as a server would be, on the test's clock. Without a
    `rate_limit_per_minute` of their own, tests run unlimited (the rate limit has its own tests)."""
    configured = Settings(database_url=store.url, **settings)
    runtime = Runtime.from_settings(configured, store)
    runtime.clock = clock
    if "rate_limit_per_minute" not in settings:
        runtime.rate_limiter = None
    return create_http_app(configured, runtime)


def rest_client(
    app: ASGIApp, key: str | None = None, *, base_url: str = API, **kwargs: Any
) -> httpx.AsyncClient:
    """An in-process client of `app` (no network), sending `key` as the bearer token when given."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, headers=headers, **kwargs
    )


def rest_route(op: Operation) -> tuple[str, str]:
    """`op`'s REST method and path (under `/api/v1`): an operation served over REST has both."""
    assert op.http_method is not None and op.http_path is not None, f"{op.name} has no REST route"
    return op.http_method, op.http_path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def rest_call(
    http: httpx.AsyncClient, op: Operation, arguments: dict[str, Any], **kwargs: Any
) -> httpx.Response:
    """Call `op` over REST as a client reads the reference: path parameters in the URL, the rest in
    the JSON body (POST, PATCH) or the query string (GET, DELETE)."""
    assert op.http_method is not None and op.http_path is not None, f"{op.name} has no REST route"
    path, rest = op.http_path, dict(arguments)
    for name in op.path_params:
        path = path.replace("{" + name + "}", quote(str(rest.pop(name)), safe=""))
    if op.http_method in _BODY_METHODS:
        return await http.request(op.http_method, path, json=rest, **kwargs)
    return await http.request(op.http_method, path, params=rest, **kwargs)


def assert_documented(op: Operation, response: httpx.Response) -> None:
    """The OpenAPI document declares `response`'s status for `op`, and its body validates against it."""
    assert op.http_method is not None and op.http_path is not None, f"{op.name} has no REST route"
    document = api_document()
    responses = document["paths"]["/api/v1" + op.http_path][op.http_method.lower()]["responses"]
    declared = responses.get(str(response.status_code))
    assert declared is not None, f"{op.name}: {response.status_code} is not documented"
    if "$ref" in declared:
        declared = document["components"]["responses"][declared["$ref"].rsplit("/", 1)[1]]
    schema = {**declared["content"]["application/json"]["schema"], "components": document["components"]}
    Draft202012Validator(schema).validate(response.json())


# ---- a tenant with one of everything


@dataclass
class Seeded:
    """Ids of a tenant's data (`server.sample_data.create_sample_data` of `small_sample`), by the
    argument names that take them, and the platform's default `categoryId`."""

    tenant: Tenant
    ids: dict[str, str]


async def run(store: Store, tenant: Tenant, name: str, /, **arguments: Any) -> dict[str, Any]:
    """Run a catalog operation directly (no transport) as `tenant`'s full-access key; its JSON result."""
    return await operate(store, principal_of(tenant), name, arguments)


def small_sample() -> Sample:
    """Two students (the first enrolled and a member), a published course with a section and a
    lesson, a community with a thread, a comment and a media item; new emails and slugs each call."""
    return Sample(
        students=(
            {"name": "Jane Smith", "email": _email(), "password": "securepass123"},
            {"name": "John Doe", "email": _email(), "password": "securepass123"},
        ),
        course=course_body(
            published=True,
            sections=[{"title": "Getting Started", "lessons": [{"title": "Intro", "duration": 60}]}],
        ),
        community={"name": "Weekly Wins", "slug": _slug("wins")},
        thread={"title": "Hello", "content": "Hi all"},
        comment="Hi",
        media=MEDIA,
    )


async def seed(store: Store, tenant: Tenant) -> Seeded:
    ids = await create_sample_data(
        store, principal_of(tenant), owner_user_id=tenant.owner_user_id, sample=small_sample()
    )
    webhook_id = await add_webhook(store, tenant.producer_id)
    return Seeded(tenant=tenant, ids={"categoryId": DEFAULT_CATEGORY_ID, **ids, "webhookId": webhook_id})


def _email() -> str:
    return f"student-{secrets.token_hex(4)}@example.com"


def _slug(stem: str) -> str:
    return f"{stem}-{secrets.token_hex(4)}"


# ---- example arguments: a successful call of each operation on a seeded tenant

Example = Callable[[dict[str, str]], dict[str, Any]]

_WRITES: dict[str, Example] = {
    "parse_video": lambda ids: {"url": "https://youtube.com/watch?v=dQw4w9WgXcQ"},
    "register_student": lambda ids: {"name": "Jane Smith", "email": _email(), "password": "securepass123"},
    "update_student": lambda ids: {"studentId": ids["studentId"], "bio": "Learns TypeScript"},
    "erase_student": lambda ids: {
        "studentId": ids["studentId"],
        "confirm": ids["studentId"],
        "posts": "keep_anonymous",
    },
    "create_course": lambda ids: course_body(title="Mastering TypeScript", price=4999, level="intermediate"),
    "update_course": lambda ids: {"courseId": ids["courseId"], "title": "Renamed", "price": 100},
    "create_section": lambda ids: {"courseId": ids["courseId"], "title": "Type System Deep Dive"},
    "update_section": lambda ids: {
        "courseId": ids["courseId"],
        "sectionId": ids["sectionId"],
        "title": "Basics",
    },
    "create_lesson": lambda ids: {
        "courseId": ids["courseId"],
        "sectionId": ids["sectionId"],
        "title": "Primitive Types",
        "duration": 720,
        "videoUrl": "https://vimeo.com/123456789",
    },
    "update_lesson": lambda ids: {
        "courseId": ids["courseId"],
        "sectionId": ids["sectionId"],
        "lessonId": ids["lessonId"],
        "videoUrl": "https://youtu.be/dQw4w9WgXcQ",
    },
    "create_community": lambda ids: {"name": "Builders", "slug": _slug("builders"), "isPublic": False},
    "update_community": lambda ids: {"communityId": ids["communityId"], "description": "Weekly wins"},
    "create_thread": lambda ids: {
        "communityId": ids["communityId"],
        "title": "Weekly Discussion: What did you learn this week?",
        "content": "Share your wins, challenges, and insights...",
        "userId": ids["studentId"],
        "pinned": True,
    },
    "update_thread": lambda ids: {
        "communityId": ids["communityId"],
        "threadId": ids["threadId"],
        "pinned": True,
    },
    "create_comment": lambda ids: {
        "communityId": ids["communityId"],
        "threadId": ids["threadId"],
        "content": "Great thread",
        "userId": ids["studentId"],
        "parentId": ids["commentId"],
    },
    "update_comment": lambda ids: {
        "communityId": ids["communityId"],
        "threadId": ids["threadId"],
        "commentId": ids["commentId"],
        "content": "Edited",
    },
    "add_member": lambda ids: {
        "communityId": ids["communityId"],
        "userId": ids["otherStudentId"],
        "role": "moderator",
    },
    "remove_member": lambda ids: {"communityId": ids["communityId"], "userId": ids["userId"]},
    "add_media": lambda ids: {"communityId": ids["communityId"], "userId": ids["studentId"], **MEDIA},
    "enroll_student": lambda ids: {"studentId": ids["otherStudentId"], "courseId": ids["courseId"]},
    "enroll_students": lambda ids: {
        "courseId": ids["courseId"],
        "studentIds": [ids["otherStudentId"], ids["studentId"]],
    },
    "create_webhook": lambda ids: {"url": PUBLIC_HOOK_URL, "eventTypes": ["thread.created"]},
    "update_webhook": lambda ids: {"webhookId": ids["webhookId"], "description": "Community bot"},
    "update_progress": lambda ids: {
        "enrollmentId": ids["enrollmentId"],
        "lessonId": ids["lessonId"],
        "completed": True,
        "watchedSeconds": 60,
    },
}


def example_arguments(op: Operation, ids: dict[str, str]) -> dict[str, Any]:
    """Arguments for a successful call of `op` on a seeded tenant. Operations without an explicit
    example (reads, deletes, publish) take the ids their input model requires, by name."""
    if op.name in _WRITES:
        return _WRITES[op.name](ids)
    arguments = {}
    for name, field in op.input_model.model_fields.items():
        alias = field.alias or name
        if field.is_required() or alias in op.path_params:  # REST's path needs what MCP leaves optional
            if alias not in ids:
                raise KeyError(f"no example for {op.name}: add one to tests/support/rest.py")
            arguments[alias] = ids[alias]
    return arguments
