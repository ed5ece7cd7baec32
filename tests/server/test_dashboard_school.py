"""The school on the dashboard: the Courses, course, Students, student, Communities and Needs
attention pages, and the overview's week against the week before, each figure from a small
school built through the operations and counted here by hand; another school's course and
student are 404; a course titled `<script>` is text. Then the pages in real Chromium, on the demo
school, with the screenshots in docs/ (`BLOHKO_SCREENSHOTS_TO_DOCS=1` rewrites them)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.support.chromium import CHROMIUM, chromium_page, screenshots_folder, sign_in_as_demo_owner
from tests.support.clock import Clock
from tests.support.community_factories import call, new_community, new_student, new_thread
from tests.support.dashboard import BASE, demo_http_server, sign_in
from tests.support.enrollment_factories import enroll, progress
from tests.support.factories import make_course, mcp_client
from tests.support.rest import http_app, rest_client


@asynccontextmanager
async def _signed_in(store, tenant, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    async with rest_client(http_app(store, clock=clock), base_url=BASE) as client:
        response = await sign_in(client, tenant.owner_email, tenant.owner_password)
        assert response.status_code == 303
        yield client


def _text(html: str) -> str:
    """The page as a person reads it: tags dropped, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def _school(store, tenant, clock: Clock) -> dict[str, Any]:
    """Python 101: four lessons in two sections; Ana completes all four, Ben the first two, Cy the
    first, Dee none: a funnel of 3, 2, 1, 1 completions out of 4 enrollments. A draft course titled
    `<script>…`. Weekly Wins: Ben a member, his thread unanswered. Fifteen days later Eve registers
    and enrolls: the week's report counts her, and Ben, Cy and Dee have been silent 15 days."""
    async with mcp_client(store, tenant.key, clock=clock) as client:
        sections = [
            {"title": "Start", "lessons": [{"title": "Welcome"}, {"title": "Setup"}]},
            {"title": "Deeper", "lessons": [{"title": "Loops"}, {"title": "Functions"}]},
        ]
        course = await make_course(client, title="Python 101", sections=sections)
        lessons = [lesson["id"] for section in course["sections"] for lesson in section["lessons"]]
        script = await make_course(client, title="<script>alert(1)</script>")
        students = {name: await new_student(client, name) for name in ("Ana", "Ben", "Cy", "Dee")}
        enrollments = {
            name: (await enroll(client, sid, course["id"]))["id"] for name, sid in students.items()
        }
        await call(client, "publish_course", courseId=course["id"])
        clock.advance(hours=1)  # Dee's silence (since enrolling) is the longest
        for name, done in (("Ana", 4), ("Ben", 2), ("Cy", 1)):
            for lesson in lessons[:done]:
                await progress(client, enrollments[name], lesson)
        community = await new_community(client, name="Weekly Wins")
        await call(client, "add_member", communityId=community["id"], userId=students["Ben"])
        await new_thread(client, community["id"], students["Ben"], title="Stuck on setup")
        clock.advance(days=15)
        students["Eve"] = await new_student(client, "Eve")
        await enroll(client, students["Eve"], course["id"])
        clock.advance(minutes=1)  # Eve registered and enrolled today: within the report's period
    return {"course": course, "script": script, "students": students, "community": community}


@pytest.fixture
def clock() -> Clock:
    return Clock.at_present()


async def test_the_overview_links_its_cards_and_shows_the_week_against_the_one_before(store, tenant, clock):
    await _school(store, tenant, clock)
    async with _signed_in(store, tenant, clock) as client:
        page = (await client.get("/dashboard")).text
    for href in (
        "/students",
        "/courses?status=published",
        "/courses?status=draft",
        "/communities",
        "/attention",
    ):
        assert f'href="/dashboard{href}"' in page
    text = _text(page)
    assert "The last 7 days" in text, text
    assert "New students 1 0 —" in text  # Eve this week, no one the week before
    assert "Enrollments 1 0 —" in text
    assert "Lessons completed 0 0 —" in text  # all seven were 15 days ago


async def test_the_courses_page_lists_each_course_with_its_curriculum_enrollments_and_completion(
    store, tenant, clock
):
    school = await _school(store, tenant, clock)
    async with _signed_in(store, tenant, clock) as client:
        page = (await client.get("/dashboard/courses")).text
        drafts = (await client.get("/dashboard/courses", params={"status": "draft"})).text
    text = _text(page)
    # Python 101: 4 lessons, 5 enrollments, 1 completed (20%), no one active in the last 7 days.
    assert "Python 101 published 4 5 1 20% 0" in text
    assert f'href="/dashboard/courses/{school["course"]["id"]}"' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; draft 0 0 0 0% 0" in text
    assert "<script>alert(1)" not in page  # autoescaped: the title is text
    assert "&lt;script&gt;" in drafts and "Python 101" not in drafts


async def test_a_course_page_draws_its_funnel_with_a_table_and_its_figures(store, tenant, clock):
    school = await _school(store, tenant, clock)
    async with _signed_in(store, tenant, clock) as client:
        page = (await client.get(f"/dashboard/courses/{school['course']['id']}")).text
        script = await client.get(f"/dashboard/courses/{school['script']['id']}")
    assert '<svg class="chart funnel"' in page and 'aria-labelledby="funnel-title"' in page
    assert "<script" not in page.split("</head>")[1]  # no script in the page's body: the chart is SVG
    text = _text(page)
    # #, section, lesson, started, completed, completion (of 5 enrollments)
    for row in (
        "1 Start Welcome 3 3 60%",
        "2 Start Setup 2 2 40%",
        "3 Deeper Loops 1 1 20%",
        "4 Deeper Functions 1 1 20%",
    ):
        assert row in text
    assert "Enrollments 5" in text and "Completed 1 (20%)" in text and "Certificates 1" in text
    assert "Lessons 4" in text
    assert re.search(r"largest drop is at lesson 2, “Setup”: 1 fewer completions", text)
    assert script.status_code == 200 and "&lt;script&gt;alert(1)&lt;/script&gt;" in script.text
    assert "<script>alert(1)" not in script.text
    assert "This course has no lessons yet." in script.text


async def test_the_students_page_searches_and_a_student_page_shows_progress_streak_certificates_and_communities(
    store, tenant, clock
):
    school = await _school(store, tenant, clock)
    ben = school["students"]["Ben"]
    async with _signed_in(store, tenant, clock) as client:
        everyone = _text((await client.get("/dashboard/students")).text)
        found = (await client.get("/dashboard/students", params={"search": "Be"})).text
        page = (await client.get(f"/dashboard/students/{ben}")).text
        ana = _text((await client.get(f"/dashboard/students/{school['students']['Ana']}")).text)
    assert "5 students" in everyone
    assert "1 student matching “Be”" in _text(found) and f'href="/dashboard/students/{ben}"' in found
    text = _text(page)
    assert "Python 101" in text and "50% (2/4 lessons)" in text
    assert "Enrollments 1" in text and "Certificates 0" in text
    assert "Current streak 0 days" in text and "Longest streak 1 day" in text  # 15 days ago, one day
    assert "Weekly Wins · member" in text
    assert "Certificates 1" in ana and "Not a member of any community." in ana
    assert ben not in text  # the id is in links only, never shown


async def test_the_communities_page_shows_waiting_threads_and_activity(store, tenant, clock):
    school = await _school(store, tenant, clock)
    async with _signed_in(store, tenant, clock) as client:
        page = (await client.get("/dashboard/communities")).text
    text = _text(page)
    assert "Weekly Wins" in text and "Members 1" in text and "Waiting for an answer 1" in text
    assert "Stuck on setup by Ben" in text
    assert "New threads 0" in text  # 15 days ago: outside the last 7 days
    assert f'href="/dashboard/students/{school["students"]["Ben"]}"' in page


async def test_the_attention_list_names_the_silent_students_longest_silence_first(store, tenant, clock):
    school = await _school(store, tenant, clock)
    course_id = school["course"]["id"]
    async with _signed_in(store, tenant, clock) as client:
        page = (await client.get("/dashboard/attention")).text
        longer = _text((await client.get("/dashboard/attention", params={"days": "16"})).text)
        of_course = _text((await client.get("/dashboard/attention", params={"course": course_id})).text)
    text = _text(page)
    assert "3 stalled enrollments" in text
    names = re.findall(r'<th scope="row"><a href="/dashboard/students/[^"]+">([^<]+)</a>', page)
    assert names[0] == "Dee" and set(names[1:]) == {
        "Ben",
        "Cy",
    }  # Dee silent since enrolling, before the others' progress
    assert "Ben Python 101 50% (2/4)" in text and "15 days" in text and "never started" in text
    assert "No one" in longer
    assert "3 stalled enrollments in Python 101" in of_course


async def test_another_schools_course_student_and_community_are_not_found(
    store, tenant, tenant_factory, clock
):
    other = await tenant_factory("Other Academy")
    school = await _school(store, other, clock)
    async with _signed_in(store, tenant, clock) as client:
        course = await client.get(f"/dashboard/courses/{school['course']['id']}")
        student = await client.get(f"/dashboard/students/{school['students']['Ben']}")
        attention = await client.get("/dashboard/attention", params={"course": school["course"]["id"]})
        listed = _text((await client.get("/dashboard/courses")).text)
    assert course.status_code == student.status_code == attention.status_code == 404
    assert "Python 101" not in course.text and "Ben" not in student.text
    assert "0 courses" in listed


@pytest.mark.parametrize(
    "path", ["/dashboard/courses", "/dashboard/students", "/dashboard/communities", "/dashboard/attention"]
)
async def test_the_school_pages_need_a_session_and_send_secure_headers(store, tenant, clock, path):
    async with rest_client(http_app(store, clock=clock), base_url=BASE) as client:
        anonymous = await client.get(path)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/dashboard/sign-in")
    async with _signed_in(store, tenant, clock) as client:
        page = await client.get(path)
    assert page.status_code == 200
    assert "default-src" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert f'href="{path}" aria-current="page"' in page.text  # in the navigation


# ---- real Chromium, on the demo school


@pytest.fixture(scope="module")
def demo_server(databases, tmp_path_factory):
    with demo_http_server(databases.new("dashboard-school"), tmp_path_factory.mktemp("logs")) as running:
        yield running


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium")
def test_in_chromium_the_overview_leads_to_a_course_funnel_and_the_attention_list(demo_server, tmp_path):
    shots = screenshots_folder(tmp_path)
    url = demo_server.url
    with chromium_page() as (page, errors):
        sign_in_as_demo_owner(page, url)
        assert page.get_by_role("heading", name="The last 7 days").is_visible()
        page.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)

        page.get_by_role("link", name="Published courses").click()
        page.wait_for_url(re.compile(r"/dashboard/courses\?status=published$"))
        page.screenshot(path=str(shots / "dashboard-courses.png"), full_page=True)
        page.locator("table.school tbody th a").first.click()
        page.wait_for_url(re.compile(r"/dashboard/courses/course_"))
        chart = page.locator("svg.funnel")
        assert chart.is_visible() and chart.locator("rect.bar").count() > 1
        assert chart.bounding_box()["height"] > 100  # type: ignore[index]
        page.screenshot(path=str(shots / "dashboard-course.png"), full_page=True)

        page.goto(f"{url}/dashboard")
        page.get_by_role("link", name="Students needing attention").click()
        page.wait_for_url(re.compile(r"/dashboard/attention$"))
        assert page.get_by_role("heading", name="Students needing attention").is_visible()
        page.screenshot(path=str(shots / "dashboard-attention.png"), full_page=True)

        page.get_by_role("link", name="Students", exact=True).first.click()
        page.wait_for_url(re.compile(r"/dashboard/students$"))
        page.screenshot(path=str(shots / "dashboard-students.png"), full_page=True)
        page.locator("table.school tbody th a").first.click()
        page.wait_for_url(re.compile(r"/dashboard/students/user_"))
        page.screenshot(path=str(shots / "dashboard-student.png"), full_page=True)

        page.get_by_role("link", name="Communities", exact=True).first.click()
        page.wait_for_url(re.compile(r"/dashboard/communities$"))
        page.screenshot(path=str(shots / "dashboard-communities.png"), full_page=True)
    assert errors == []
