"""The student page's "Download export (JSON)": the export_student document as a file to save
(an attachment, not cached), the same document REST answers; another school's student is 404 and
no session gets the sign-in page. Then in real Chromium on the demo school: the button downloads a
file that parses as the student's export (its screenshot in docs/ with `BLOHKO_SCREENSHOTS_TO_DOCS=1`)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.chromium import CHROMIUM, chromium_page, screenshots_folder, sign_in_as_demo_owner
from tests.support.clock import Clock
from tests.support.community_factories import new_community, new_student, new_thread
from tests.support.dashboard import BASE, demo_http_server, sign_in
from tests.support.enrollment_factories import enroll, new_course, progress
from tests.support.factories import apart_from_exports, mcp_client
from tests.support.rest import http_app, rest_client


async def test_the_download_is_the_students_export_as_an_attachment(store, tenant):
    clock = Clock.at_present()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        ada = await new_student(client, "Ada Lovelace")
        course, lessons = await new_course(client, 2, title="Python 101")
        enrollment = await enroll(client, ada, course)
        await progress(client, enrollment["id"], lessons[0])
        community = await new_community(client)
        await new_thread(client, community["id"], tenant.owner_user_id)  # not Ada's
    app = http_app(store, clock=clock)
    async with rest_client(app, base_url=BASE) as browser:
        assert (await sign_in(browser, tenant.owner_email, tenant.owner_password)).status_code == 303
        page = (await browser.get(f"/dashboard/students/{ada}")).text
        download = await browser.get(f"/dashboard/students/{ada}/export.json")
    async with rest_client(app, tenant.key) as http:
        over_rest = (await http.get(f"/students/{ada}/export")).json()
    assert f'href="/dashboard/students/{ada}/export.json" download' in page
    assert "Download export (JSON)" in page
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"] == f'attachment; filename="student-{ada}-export.json"'
    assert download.headers["cache-control"] == "no-store"
    over_rest, exports = apart_from_exports(over_rest)
    assert [entry["keyId"] for entry in exports] == [None], "the owner's download, audited"
    assert download.json() == over_rest  # the same clock: the same exportedAt too
    assert download.json()["enrollments"][0]["lessons"][0]["lessonId"] == lessons[0]


async def test_another_schools_student_is_not_found_and_no_session_signs_in(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        theirs = await new_student(client, "Their Student")
    app = http_app(store)
    async with rest_client(app, base_url=BASE) as anonymous:
        unsigned = await anonymous.get(f"/dashboard/students/{theirs}/export.json")
    async with rest_client(app, base_url=BASE) as browser:
        await sign_in(browser, tenant.owner_email, tenant.owner_password)
        refused = await browser.get(f"/dashboard/students/{theirs}/export.json")
    assert unsigned.status_code == 303 and unsigned.headers["location"].startswith("/dashboard/sign-in")
    assert refused.status_code == 404 and "Their Student" not in refused.text
    assert "attachment" not in refused.headers.get("content-disposition", "")


@pytest.fixture(scope="module")
def demo_server(databases, tmp_path_factory):
    with demo_http_server(databases.new("dashboard-export"), tmp_path_factory.mktemp("logs")) as running:
        yield running


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium")
def test_in_chromium_the_button_downloads_the_students_export(demo_server, tmp_path):
    shots = screenshots_folder(tmp_path)
    with chromium_page(accept_downloads=True) as (page, errors):
        sign_in_as_demo_owner(page, demo_server.url)
        page.goto(f"{demo_server.url}/dashboard/students")
        page.locator("table.school tbody th a").first.click()
        page.wait_for_url(re.compile(r"/dashboard/students/user_"))
        student_id = page.url.rsplit("/", 1)[1]
        name = page.get_by_role("heading", level=1).inner_text()
        button = page.get_by_role("link", name="Download export (JSON)")
        assert button.is_visible()
        button.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "dashboard-student-export.png"), full_page=True)
        with page.expect_download() as downloading:
            button.click()
        download = downloading.value
        assert download.suggested_filename == f"student-{student_id}-export.json"
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
    document = json.loads(saved.read_text())
    assert document["student"]["id"] == student_id and document["student"]["name"] == name
    assert document["enrollments"] and document["truncated"] == []
    assert errors == []
