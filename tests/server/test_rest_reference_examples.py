"""Each curl example of api-reference.txt, host replaced, answers the documented status and body shape."""

from __future__ import annotations

import re

from tests.support.factories import course_body
from tests.support.reference_examples import PARSED_YOUTUBE_VIDEO, REFERENCE_COURSE, YOUTUBE_URL
from tests.support.rest import run, seed

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
PAGINATION_KEYS = {"page", "limit", "total", "totalPages", "hasMore"}


# curl -H "Authorization: Bearer blk_your_api_key_here" https://your-domain.com/api/v1/courses
async def test_list_courses_with_a_bearer_key(store, tenant, http):
    await seed(store, tenant)
    response = await http.get("/courses")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "pagination"} and set(body["pagination"]) == PAGINATION_KEYS
    assert [course["title"] for course in body["data"]] == ["A Course"]


# curl -H "Authorization: Bearer blk_..." "https://your-domain.com/api/v1/courses?page=2&limit=10"
async def test_list_courses_page_2_of_10(store, tenant, http):
    for i in range(25):
        await run(store, tenant, "create_course", **course_body(title=f"Course {i:02d}"))
    response = await http.get("/courses?page=2&limit=10")
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"page": 2, "limit": 10, "total": 25, "totalPages": 3, "hasMore": True}
    assert [course["title"] for course in body["data"]] == [
        f"Course {i:02d}" for i in range(14, 4, -1)
    ]  # newest first


# curl -X POST ... -d '{"name": "Jane Smith", "email": "jane@example.com", "password": "securepass123"}' .../students
async def test_register_jane_smith(http):
    response = await http.post(
        "/students", json={"name": "Jane Smith", "email": "jane@example.com", "password": "securepass123"}
    )
    assert response.status_code == 201
    student = response.json()["student"]
    assert set(student) == {
        "id",
        "name",
        "email",
        "avatarUrl",
        "bio",
        "role",
        "createdAt",
        "updatedAt",
    }  # updatedAt: incremental sync
    assert {k: student[k] for k in ("name", "email", "avatarUrl", "bio", "role")} == {
        "name": "Jane Smith",
        "email": "jane@example.com",
        "avatarUrl": None,
        "bio": None,
        "role": "student",
    }
    assert ISO_UTC.fullmatch(student["createdAt"])
    assert response.json()["generatedPassword"] is None  # a password was given


# POST /courses with the reference's "Mastering TypeScript" body (its categoryId cat_abc123 is
# an illustration; a real category id stands in for it).
async def test_create_mastering_typescript_with_its_curriculum(http):
    response = await http.post("/courses", json=REFERENCE_COURSE)
    assert response.status_code == 201
    course = response.json()["course"]
    assert (course["title"], course["slug"], course["price"], course["level"]) == (
        "Mastering TypeScript",
        "mastering-typescript",
        4999,
        "intermediate",
    )
    assert [s["title"] for s in course["sections"]] == ["Getting Started", "Type System Deep Dive"]
    lessons = [lesson for section in course["sections"] for lesson in section["lessons"]]
    assert [lesson["videoMeta"]["type"] for lesson in lessons] == ["youtube", "vimeo", "direct"]
    assert [lesson["videoUrl"] for lesson in lessons] == [
        "https://www.youtube.com/embed/abc123",
        "https://player.vimeo.com/video/123456789",
        "https://cdn.example.com/video.mp4",
    ]
    assert (course["lessonCount"], course["totalDuration"]) == (3, 1800)
    assert (await http.get(f"/courses/{course['id']}")).json()["course"] == course


# The lesson example response: {"lesson": {"id", "title", "videoUrl" (embed), "duration", "videoMeta": {...}}}
async def test_create_lesson_answers_the_embed_url_and_video_meta(store, tenant, http):
    ids = (await seed(store, tenant)).ids
    path = f"/courses/{ids['courseId']}/sections/{ids['sectionId']}/lessons"
    response = await http.post(
        path,
        json={
            "title": "Introduction",
            "duration": 600,
            "videoUrl": "https://youtube.com/watch?v=dQw4w9WgXcQ",
        },
    )
    assert response.status_code == 201
    lesson = response.json()["lesson"]
    assert {"id", "title", "videoUrl", "duration", "videoMeta"} <= set(lesson)
    assert (lesson["title"], lesson["duration"]) == ("Introduction", 600)
    assert lesson["videoUrl"] == "https://www.youtube.com/embed/dQw4w9WgXcQ"
    assert lesson["videoMeta"] == {
        "type": "youtube",
        "videoId": "dQw4w9WgXcQ",
        "thumbnailUrl": "https://img.youtube.com/vi/dQw4w9WgXcQ/maxresdefault.jpg",
        "originalUrl": "https://youtube.com/watch?v=dQw4w9WgXcQ",
    }


# POST /videos/parse {"url": "https://youtube.com/watch?v=dQw4w9WgXcQ"}
async def test_parse_video(http):
    response = await http.post("/videos/parse", json={"url": YOUTUBE_URL})
    assert response.status_code == 200
    assert response.json() == {"video": PARSED_YOUTUBE_VIDEO}


# curl -X POST ... -d '{"studentId": "user_123", "courseId": "course_456"}' .../enrollments
async def test_enroll_a_student(store, tenant, http):
    ids = (await seed(store, tenant)).ids
    response = await http.post(
        "/enrollments", json={"studentId": ids["otherStudentId"], "courseId": ids["courseId"]}
    )
    assert response.status_code == 201
    enrollment = response.json()["enrollment"]
    assert (enrollment["studentId"], enrollment["courseId"]) == (ids["otherStudentId"], ids["courseId"])


# curl -X POST ... -d '{"title": "Weekly Discussion: ...", "content": "...", "userId": "bot_user_id", "pinned": true}'
#   .../communities/{id}/threads   (the producer's own user posts, as a bot would)
async def test_a_bot_posts_a_pinned_weekly_thread(store, tenant, http):
    ids = (await seed(store, tenant)).ids
    body = {
        "title": "Weekly Discussion: What did you learn this week?",
        "content": "Share your wins, challenges, and insights...",
        "userId": tenant.owner_user_id,
        "pinned": True,
    }
    response = await http.post(f"/communities/{ids['communityId']}/threads", json=body)
    assert response.status_code == 201
    thread = response.json()["thread"]
    assert (thread["title"], thread["content"], thread["pinned"]) == (body["title"], body["content"], True)
    assert thread["author"]["id"] == tenant.owner_user_id
    listed = (await http.get(f"/communities/{ids['communityId']}/threads")).json()["data"]
    assert listed[0]["id"] == thread["id"]  # pinned first


# GET /categories
async def test_list_categories(http):
    response = await http.get("/categories")
    assert response.status_code == 200
    categories = response.json()["categories"]
    assert categories[:2] == [
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
    assert all(set(category) == {"id", "name", "slug", "icon", "order"} for category in categories)


# The error example: {"error": "not_found", "message": "Course not found"}
async def test_an_unknown_course_answers_the_documented_error_body(http):
    response = await http.get("/courses/course_456")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Course not found"}
