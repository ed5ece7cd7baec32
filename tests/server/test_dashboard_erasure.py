"""Erasing a student from their dashboard page: a typed confirmation (their email), the session's
CSRF token, the operation through the runner. In process, then in real Chromium on the demo school."""

from __future__ import annotations

import re

import pytest

from storage.tables import User
from tests.support.chromium import CHROMIUM, chromium_page, screenshots_folder, sign_in_as_demo_owner
from tests.support.community_factories import new_student
from tests.support.dashboard import csrf_of, demo_http_server, signed_in
from tests.support.factories import mcp_client


async def _student(store, student_id: str) -> User | None:
    async with store.sessions() as session:
        return await session.get(User, student_id)


async def test_the_form_needs_the_csrf_token_and_the_students_email(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        student_id = await new_student(client, "Dora Dashboard")
    email = (await _student(store, student_id)).email  # type: ignore[union-attr]
    async with signed_in(store, tenant) as browser:
        page = await browser.get(f"/dashboard/students/{student_id}")
        assert "Erase student" in page.text and f"Type <strong>{email}</strong>" in page.text
        action = f"/dashboard/students/{student_id}/erase"
        forged = await browser.post(action, data={"confirm": email, "posts": "delete"})
        assert forged.status_code == 403
        wrong = await browser.post(
            action, data={"csrf_token": csrf_of(page), "confirm": "dora@wrong.example", "posts": "delete"}
        )
        assert wrong.status_code == 422 and "confirm" in wrong.text
        assert await _student(store, student_id) is not None
        done = await browser.post(
            action, data={"csrf_token": csrf_of(page), "confirm": email, "posts": "keep_anonymous"}
        )
        assert done.status_code == 303 and done.headers["location"] == "/dashboard/students?done=erased"
    assert await _student(store, student_id) is None


@pytest.fixture(scope="module")
def demo_server(databases, tmp_path_factory):
    with demo_http_server(databases.new("dashboard-erasure"), tmp_path_factory.mktemp("logs")) as running:
        yield running


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium")
def test_in_chromium_the_owner_types_the_email_and_the_student_is_gone(demo_server, tmp_path):
    shots = screenshots_folder(tmp_path)
    url = demo_server.url
    with chromium_page() as (page, errors):
        sign_in_as_demo_owner(page, url)
        page.goto(f"{url}/dashboard/students")
        page.locator("table.school tbody th a").first.click()
        page.wait_for_url(re.compile(r"/dashboard/students/user_"))
        student_page = page.url
        name = page.get_by_role("heading", level=1).inner_text()
        email = page.locator("#erase-title ~ form strong, label[for=erase-confirm] strong").first.inner_text()

        page.get_by_label("to confirm").fill("not-the-email@example.com")
        page.get_by_role("button", name="Erase student").click()
        assert "confirm" in page.content()  # refused, naming the field; nothing erased
        page.goto(student_page)
        assert page.get_by_role("heading", name=name).is_visible()

        page.get_by_label("Delete, with the replies under them").check()
        page.get_by_label("to confirm").fill(email)
        page.locator("section", has=page.locator("#erase-title")).screenshot(
            path=str(shots / "dashboard-student-erase.png")
        )
        page.get_by_role("button", name="Erase student").click()
        page.wait_for_url(re.compile(r"/dashboard/students\?done=erased$"))
        assert page.get_by_role("status").inner_text() == "The student was erased."
        assert page.get_by_role("link", name=name, exact=True).count() == 0
        assert page.goto(student_page).status == 404  # type: ignore[union-attr]
    expected = ("status of 422", "status of 404")  # the refused confirmation, the erased student's page
    assert [error for error in errors if not any(status in error for status in expected)] == []
