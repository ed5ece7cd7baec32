"""A typed client generated from the OpenAPI document by `openapi-python-client`, as an integrator
would make one, runs every curl example of api-reference.txt and agent-style workflows against a
real `blohko serve --http`.

The client is generated in the test run from the document the server serves (not committed): if
the document and the server disagree on a name, a type, a status or a body, these calls fail.
Typed bodies are built from the reference's JSON with the generated models' `from_dict`, and
answers are parsed by the generated models, which raise on a missing or mistyped field.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.support.processes import cli_json, http_server, migrated_env
from tests.support.reference_examples import PARSED_YOUTUBE_VIDEO, REFERENCE_COURSE, YOUTUBE_URL

GENERATOR = str(Path(sys.executable).parent / "openapi-python-client")
PACKAGE = "blohko_generated_client"
OWNER_EMAIL, OWNER_PASSWORD = "owner@generated.example", "generated-client-password"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """A migrated SQLite store, a producer with its owner's password and a `*` key (made by the CLI),
    and `blohko serve --http` on it."""
    directory = tmp_path_factory.mktemp("generated_client")
    env = migrated_env(directory)
    producer = cli_json(
        env,
        "producers",
        "create",
        "--name",
        "Generated Academy",
        "--email",
        OWNER_EMAIL,
        "--password",
        OWNER_PASSWORD,
    )
    key = cli_json(
        env, "keys", "create", "--producer", producer["id"], "--name", "integrator", "--permissions", "*"
    )
    with http_server({**env, "BLOHKO_RATE_LIMIT_PER_MINUTE": "0"}, directory / "server.log") as server:
        yield SimpleNamespace(
            url=server.url, key=key["key"], producer=producer, owner_user_id=producer["ownerUserId"]
        )


@pytest.fixture(scope="module")
def client_package(served, tmp_path_factory) -> ModuleType:
    """The client `openapi-python-client` generates from the served document, imported."""
    directory = tmp_path_factory.mktemp("client")
    document = directory / "openapi.json"
    document.write_bytes(httpx.get(f"{served.url}/api/v1/openapi.json").raise_for_status().content)
    config = directory / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run: the code is imported, not read
    generated = subprocess.run(
        [
            GENERATOR,
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(directory / PACKAGE),
            "--config",
            str(config),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, (
        generated.stdout + generated.stderr
    )  # nothing skipped
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(directory))


class Api:
    """Calls the generated client's operations by tag and name, with the generated types."""

    def __init__(self, package: ModuleType, client: Any) -> None:
        self.package, self.client = package, client

    def model(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{self.package.__name__}.models"), name)

    def __call__(self, tag: str, operation: str, /, *args: Any, status: int = 200, **kwargs: Any) -> Any:
        module = importlib.import_module(f"{self.package.__name__}.api.{tag}.{operation}")
        response = module.sync_detailed(*args, client=self.client, **kwargs)
        assert response.status_code == status, (operation, response.status_code, response.content)
        assert response.parsed is not None, (operation, response.content)
        if status < 400:
            assert type(response.parsed).__name__ != "Error", (operation, response.content)
        return response.parsed


def _api(package: ModuleType, url: str, token: str) -> Api:
    return Api(
        package, package.AuthenticatedClient(base_url=url, token=token, raise_on_unexpected_status=True)
    )


@pytest.fixture(scope="module")
def api(client_package, served) -> Iterator[Api]:
    api = _api(client_package, served.url, served.key)
    with api.client:
        yield api


def _register(api: Api, name: str, email: str, **fields: Any) -> Any:
    body = api.model("RegisterStudentBody").from_dict({"name": name, "email": email, **fields})
    return api("students", "register_student", body=body, status=201).student


def _category(api: Api) -> str:
    return api("categories", "list_categories").categories[0].id


# ---- the curl examples of api-reference.txt, in its order


def test_reference_list_courses_with_a_bearer_key_and_page_2_of_10(api):
    first = api("courses", "list_courses")
    second = api("courses", "list_courses", page=2, limit=10)
    assert (first.pagination.page, first.pagination.limit) == (1, 20)
    assert (second.pagination.page, second.pagination.limit, second.data) == (2, 10, [])


def test_reference_register_jane_smith(api):
    student = _register(api, "Jane Smith", "jane@example.com", password="securepass123")
    assert (student.name, student.email, student.role) == ("Jane Smith", "jane@example.com", "student")
    assert student.avatar_url is None and student.bio is None
    assert api("students", "get_student", student.id).student.email == "jane@example.com"


def test_reference_create_mastering_typescript_with_its_curriculum(api):
    body = api.model("CreateCourseBody").from_dict({**REFERENCE_COURSE, "categoryId": _category(api)})
    course = api("courses", "create_course", body=body, status=201).course
    assert (course.title, course.slug, course.price, course.level) == (
        "Mastering TypeScript",
        "mastering-typescript",
        4999,
        "intermediate",
    )
    assert [section.title for section in course.sections] == ["Getting Started", "Type System Deep Dive"]
    videos = [lesson.video_meta.type_ for section in course.sections for lesson in section.lessons]
    assert [str(video) for video in videos] == ["youtube", "vimeo", "direct"]


def test_reference_create_lesson_answers_the_embed_url_and_video_meta(api):
    course = _empty_course(api, "lesson-example")
    section = api(
        "courses", "create_section", course.id, body=api.model("CreateSectionBody")(title="Intro"), status=201
    )
    body = api.model("CreateLessonBody").from_dict(
        {"title": "Introduction", "duration": 600, "videoUrl": "https://youtube.com/watch?v=dQw4w9WgXcQ"}
    )
    lesson = api("courses", "create_lesson", course.id, section.section.id, body=body, status=201).lesson
    assert lesson.video_url == "https://www.youtube.com/embed/dQw4w9WgXcQ" and lesson.duration == 600
    assert lesson.video_meta.to_dict() == {
        "type": "youtube",
        "videoId": "dQw4w9WgXcQ",
        "thumbnailUrl": "https://img.youtube.com/vi/dQw4w9WgXcQ/maxresdefault.jpg",
        "originalUrl": "https://youtube.com/watch?v=dQw4w9WgXcQ",
    }


def test_reference_parse_video(api):
    parsed = api("videos", "parse_video", body=api.model("ParseVideoBody")(url=YOUTUBE_URL))
    assert parsed.video.to_dict() == PARSED_YOUTUBE_VIDEO


def test_reference_enroll_a_student(api):
    student = _register(api, "Enrolled Student", "enrolled@example.com")
    course = _empty_course(api, "enroll-example")
    body = api.model("EnrollStudentBody")(student_id=student.id, course_id=course.id)
    enrollment = api("enrollments", "enroll_student", body=body, status=201).enrollment
    assert (enrollment.student_id, enrollment.course_id) == (student.id, course.id)


def test_reference_a_bot_posts_a_pinned_weekly_thread(api, served):
    community = _community(api, "weekly")
    body = api.model("CreateThreadBody").from_dict(
        {
            "title": "Weekly Discussion: What did you learn this week?",
            "content": "Share your wins, challenges, and insights...",
            "userId": served.owner_user_id,
            "pinned": True,
        }
    )
    thread = api("communities", "create_thread", community.id, body=body, status=201).thread
    assert thread.pinned is True and thread.author.id == served.owner_user_id
    assert api("communities", "list_threads", community.id).data[0].id == thread.id  # pinned first


def test_reference_list_categories(api):
    categories = api("categories", "list_categories").categories
    assert [category.to_dict() for category in categories[:2]] == [
        {
            "id": "cat_web_development",
            "name": "Web Development",
            "slug": "web-development",
            "icon": "code",
            "order": 0,
        },
        {
            "id": "cat_data_science",
            "name": "Data Science",
            "slug": "data-science",
            "icon": "database",
            "order": 1,
        },
    ]


def test_reference_an_unknown_course_answers_the_documented_error_body(api):
    error = api("courses", "get_course", "course_456", status=404)
    assert error.to_dict() == {"error": "not_found", "message": "Course not found"}


def test_reference_api_keys_with_a_session_create_list_and_revoke(client_package, served):
    """The README's curl: sign in, create a key with permissions and an expiry, list, revoke."""
    with client_package.Client(base_url=served.url) as http:
        anonymous = Api(client_package, http)
        login = anonymous.model("LoginBody")(email=OWNER_EMAIL, password=OWNER_PASSWORD)
        token = anonymous("auth", "login", body=login).session.token
    with _api(client_package, served.url, token).client as http:
        owner = Api(client_package, http)
        body = owner.model("CreateApiKeyBody").from_dict(
            {"name": "Automation", "permissions": ["courses:*", "students:read"], "expiresInDays": 90}
        )
        created = owner("api_keys", "create_api_key", body=body, status=201).api_key
        assert created.key.startswith("blk_") and sorted(created.permissions) == [
            "courses:*",
            "students:read",
        ]
        assert created.id in [key.id for key in owner("api_keys", "list_api_keys").data]
        owner("api_keys", "revoke_api_key", id=created.id)
        with _api(client_package, served.url, created.key).client as revoked:
            assert Api(client_package, revoked)("courses", "list_courses", status=401).error == "unauthorized"
        owner("auth", "logout")


# ---- agent-style workflows (as tests/server/test_rest.py drives them), through the generated types


def _empty_course(api: Api, slug: str) -> Any:
    body = api.model("CreateCourseBody")(title=f"Course {slug}", slug=slug, category_id=_category(api))
    return api("courses", "create_course", body=body, status=201).course


def _community(api: Api, slug: str) -> Any:
    body = api.model("CreateCommunityBody")(name=f"Community {slug}", slug=slug)
    return api("communities", "create_community", body=body, status=201).community


def test_an_agent_builds_a_course_publishes_it_and_a_student_completes_it(api):
    course = _empty_course(api, "agent-course")
    section = api(
        "courses",
        "create_section",
        course.id,
        body=api.model("CreateSectionBody")(title="Basics"),
        status=201,
    )
    section_id = section.section.id
    lessons = [
        api(
            "courses",
            "create_lesson",
            course.id,
            section_id,
            status=201,
            body=api.model("CreateLessonBody").from_dict(
                {"title": f"Lesson {n}", "duration": 60, "videoUrl": f"https://vimeo.com/{n}"}
            ),
        ).lesson
        for n in (1, 2)
    ]
    patch = api.model("UpdateLessonBody").from_dict({"title": "Lesson one", "description": None, "order": 1})
    moved = api("courses", "update_lesson", course.id, section_id, lessons[0].id, body=patch).lesson
    assert (moved.title, moved.order) == ("Lesson one", 1)
    assert [lesson.id for lesson in api("courses", "list_lessons", course.id, section_id).lessons] == [
        lessons[1].id,
        lessons[0].id,
    ]
    updated = api(
        "courses", "update_course", course.id, body=api.model("UpdateCourseBody").from_dict({"price": 1999.0})
    )
    assert updated.course.price == 1999  # JSON Schema's integer: a whole number written as 1999.0 too
    assert api("courses", "publish_course", course.id).course.published is True

    student = _register(api, "Ada Agent", "ada@example.com")
    enrollment = api(
        "enrollments",
        "enroll_student",
        body=api.model("EnrollStudentBody")(student_id=student.id, course_id=course.id),
        status=201,
    ).enrollment
    for position in (1, 2):
        body = api.model("UpdateProgressBody").from_dict(
            {"lessonPosition": position, "completed": True, "watchedSeconds": 60}
        )
        progress = api("enrollments", "update_progress", enrollment.id, body=body)
    assert progress.enrollment.progress.percent == 100
    detail = api("enrollments", "get_enrollment", enrollment.id).enrollment
    assert [lesson.completed for lesson in detail.lessons] == [True, True]
    certificates = api("certificates", "list_certificates", student_id=student.id).data
    assert [certificate.course_id for certificate in certificates] == [course.id]
    assert api("enrollments", "list_enrollments", course_id=course.id).pagination.total == 1
    assert api("enrollments", "delete_enrollment", enrollment.id).deleted is True
    assert api("courses", "unpublish_course", course.id).course.published is False
    deleted = api("courses", "delete_course", course.id)
    assert (deleted.deleted, deleted.lessons_deleted) == (True, 2)
    assert api("courses", "get_course", course.id, status=404).error == "not_found"


def test_an_agent_runs_a_community(api, served):
    community = _community(api, "agent-community")
    student = _register(api, "Member Student", "member@example.com")
    member = api(
        "communities",
        "add_member",
        community.id,
        status=201,
        body=api.model("AddMemberBody").from_dict({"userId": student.id, "role": "moderator"}),
    ).member
    assert str(member.role) == "moderator"
    thread = api(
        "communities",
        "create_thread",
        community.id,
        status=201,
        body=api.model("CreateThreadBody")(
            title="Introduce yourself", content="Who are you?", user_id=served.owner_user_id
        ),
    ).thread
    comment = api(
        "communities",
        "create_comment",
        community.id,
        thread.id,
        status=201,
        body=api.model("CreateCommentBody")(content="Hello!", user_id=student.id),
    ).comment
    reply = api(
        "communities",
        "create_comment",
        community.id,
        thread.id,
        status=201,
        body=api.model("CreateCommentBody")(
            content="Welcome!", user_id=served.owner_user_id, parent_id=comment.id
        ),
    ).comment
    assert reply.parent_id == comment.id
    edited = api(
        "communities",
        "update_comment",
        community.id,
        thread.id,
        comment.id,
        body=api.model("UpdateCommentBody")(content="Hi all!"),
    )
    assert edited.comment.content == "Hi all!"
    pinned = api(
        "communities",
        "update_thread",
        community.id,
        thread.id,
        body=api.model("UpdateThreadBody")(pinned=True),
    )
    assert pinned.thread.pinned is True
    media = api(
        "communities",
        "add_media",
        community.id,
        status=201,
        body=api.model("AddMediaBody").from_dict(
            {
                "type": "file",
                "title": "Syllabus",
                "url": "https://cdn.example.com/syllabus.pdf",
                "fileName": "syllabus.pdf",
                "fileSize": 1024,
                "userId": served.owner_user_id,
            }
        ),
    ).media
    assert [
        item.id
        for item in api(
            "communities", "list_media", community.id, type_=api.model("ListMediaType")("file")
        ).data
    ] == [media.id]
    assert api("communities", "list_comments", community.id, thread.id).pagination.total == 2
    assert api("communities", "remove_member", community.id, user_id=student.id).deleted is True
    assert api("communities", "delete_thread", community.id, thread.id).comments_deleted == 2
    cleared = api(
        "communities",
        "update_community",
        community.id,
        body=api.model("UpdateCommunityBody").from_dict({"description": None}),
    )
    assert cleared.community.description is None
    assert api("communities", "delete_community", community.id).deleted is True


def test_an_agent_reads_its_feed_and_audit_log(api):
    _register(api, "Feed Student", "feed@example.com")
    events = api("events", "list_events", types=[api.model("ListEventsTypesItem")("student.registered")])
    assert events.data and all(event.type_ == "student.registered" for event in events.data)
    again = api("events", "list_events", cursor=events.cursor)
    assert again.data == []  # nothing new after the cursor
    audit = api("audit_events", "list_audit_events", operation="register_student")
    assert audit.data[0].operation == "register_student"
    assert api("whoami", "whoami").producer.id
