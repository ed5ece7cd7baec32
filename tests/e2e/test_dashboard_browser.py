"""The Producer Dashboard in a real browser (Debian's Chromium driven by Playwright) against a real
`blohko serve --http` process: sign in, create a key, use it over MCP, revoke it, read the activity,
connect an agent, sign out; add a webhook and watch its test event arrive. A screenshot of each page lands in a folder the test prints."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from standardwebhooks.webhooks import Webhook

from server.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.support.chromium import CHROMIUM, chromium, screenshots_folder, sign_in_as_demo_owner
from tests.support.processes import cli_env, http_server, run_cli
from tests.support.webhooks import receiver

COURSE_READ_TOOLS = {
    "list_categories",
    "list_courses",
    "get_course",
    "list_sections",
    "list_lessons",
    "get_lesson",
}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
)


@pytest.fixture(scope="module")
def server(databases, tmp_path_factory):
    # Loopback webhooks: the receiver of the webhook test listens on 127.0.0.1.
    env = cli_env(databases.new("dashboard-browser"), BLOHKO_WEBHOOKS_ALLOW_LOOPBACK="1")
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "--no-serve")  # the demo school: sample data and the owner's sign-in
    with http_server(env, tmp_path_factory.mktemp("logs") / "http.log") as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def _mcp_tool_names(url: str, key: str) -> set[str]:
    async def listed() -> set[str]:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            return {tool.name for tool in (await client.list_tools()).tools}

    # Playwright's sync API runs its own event loop in this thread: the SDK client runs in another.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, listed).result()


def _mcp_call(url: str, key: str, name: str) -> httpx.Response:
    return httpx.post(
        f"{url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": {}}},
        headers={"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"},
        timeout=10,
    )


def test_an_owner_creates_uses_and_revokes_a_key_in_the_browser(server, browser, tmp_path_factory):
    shots = tmp_path_factory.mktemp("dashboard-screenshots")
    print(f"\ndashboard screenshots: {shots}")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the revoke confirmation

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    # Signed out: any page leads to sign-in.
    page.goto(f"{server.url}/dashboard/keys")
    assert "/dashboard/sign-in" in page.url
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Invalid email or password."
    shot("sign-in")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dashboard/keys$"))

    # Overview.
    page.get_by_role("link", name="Overview").click()
    assert page.get_by_role("heading", name="Overview", level=1).is_visible()
    assert page.locator("svg.chart").count() == 2
    shot("overview")

    # Create a key with courses:read; its secret is shown once.
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Course reader")
    page.locator('input[type=checkbox][value="courses:read"]').check()
    page.get_by_label("Expires").select_option("90")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret").input_value()
    assert secret.startswith("blk_")
    assert page.get_by_text("shown only once").is_visible()
    shot("api-keys-created")
    page.get_by_role("link", name="API keys").click()
    assert secret not in page.content()
    row = page.locator("tr.key-row", has_text="Course reader")
    assert row.locator("td.num").inner_text() == "8"  # six course reads, whoami, parse_video
    shot("api-keys")

    # The key over MCP sees exactly the course read tools (and the two any key has).
    assert _mcp_tool_names(server.url, secret) == COURSE_READ_TOOLS | {"whoami", "parse_video"}
    assert "error" not in _mcp_call(server.url, secret, "list_categories").json()

    # Revoke it in the page (confirming), and the MCP call is refused.
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_url(re.compile(r"/dashboard/keys\?done=revoked$"))
    assert page.locator("tr.key-row", has_text="Course reader").get_by_text("revoked").is_visible()
    refused = _mcp_call(server.url, secret, "list_categories")
    assert refused.status_code == 401 and refused.json()["message"] == "This API key has been revoked"

    # Activity lists the creation and the revocation.
    page.get_by_role("link", name="Activity").click()
    table = page.locator("table.events").inner_text()
    assert "create_api_key" in table and "revoke_api_key" in table
    shot("activity")
    page.get_by_label("Operation").select_option("revoke_api_key")
    page.get_by_role("button", name="Filter").click()
    assert "create_api_key" not in page.locator("table.events").inner_text()

    # Connect an agent: configs with this server's URL; a new key made there appears in them.
    page.get_by_role("link", name="Connect an agent").click()
    configs = page.locator(".configs").inner_text()
    assert f"{server.url}/mcp" in configs and "blk_..." in configs
    shot("connect")
    page.get_by_text("Create a new key for this agent").click()
    page.locator("#connect-name").fill("Desktop agent")
    page.locator("#connect-perm-all").check()
    page.get_by_role("button", name="Create key").click()
    new_secret = page.locator("#new-key-secret").input_value()
    assert new_secret in page.locator(".configs").inner_text()
    assert {"create_course", "list_audit_events"} <= _mcp_tool_names(server.url, new_secret)

    # Account page, then sign out: pages lead to sign-in again.
    page.get_by_role("link", name="Account").click()
    shot("account")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/dashboard/sign-in"))
    assert page.get_by_text("You have signed out.").is_visible()
    page.goto(f"{server.url}/dashboard")
    assert "/dashboard/sign-in" in page.url

    # A phone-sized window: the same pages, readable.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    small = phone.new_page()
    sign_in_as_demo_owner(small, server.url)
    small.screenshot(path=str(shots / "overview-phone.png"), full_page=True)
    phone.close()
    context.close()


def test_an_owner_adds_a_webhook_and_sees_its_test_event_delivered(server, browser, tmp_path_factory):
    shots = tmp_path_factory.mktemp("webhook-screenshots")
    print(f"\nwebhook screenshots: {shots}")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    sign_in_as_demo_owner(page, server.url)

    with receiver() as hooks:
        # Add an endpoint for new threads: its signing secret is shown once.
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_label("URL").fill(hooks.url)
        page.get_by_label("Description").fill("Welcome bot")
        page.locator('input[type=checkbox][value="thread.created"]').check()
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.locator("#new-webhook-secret").input_value()
        assert secret.startswith("whsec_") and page.get_by_text("shown only once").is_visible()
        row = page.locator("tr.webhook-row", has_text=hooks.url)
        assert "thread.created" in row.inner_text() and "enabled" in row.inner_text()
        page.screenshot(path=str(shots / "webhooks.png"), full_page=True)

        # Its page: send a test event, and watch the log until the delivery succeeded.
        row.get_by_role("link", name=hooks.url).click()
        page.get_by_role("button", name="Send test event").click()
        page.wait_for_url(re.compile(r"\?done=test$"))
        for _ in range(50):
            if page.locator("tr.delivery-row.succeeded").count():
                break
            page.wait_for_timeout(200)
            page.reload()
        delivered = page.locator("tr.delivery-row.succeeded")
        assert delivered.count() == 1, page.locator("table.deliveries").inner_text()
        cells = delivered.locator("td").all_inner_texts()
        assert cells[:3] == ["succeeded", "1", "200"] and cells[3].endswith(" ms")
        page.screenshot(path=str(shots / "webhook-deliveries.png"), full_page=True)

    # What arrived is the test event, signed with the secret the page showed.
    assert len(hooks.received) == 1
    arrived = hooks.received[0]
    assert Webhook(secret).verify(arrived.body, arrived.headers)["type"] == "webhook.test"
    context.close()


_RAW_ID = re.compile(
    r"\b(?:user|course|section|lesson|enrollment|comm|mem|thread|cmt|media|key|wh)_[0-9a-f]{20}\b"
)


def test_a_newcomer_reads_the_demo_schools_activity_by_name_with_each_time_on_one_line(
    server, browser, tmp_path_factory
):
    shots = tmp_path_factory.mktemp("first-hour-screenshots")
    print(f"\nfirst-hour screenshots: {shots}")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    sign_in_as_demo_owner(page, server.url)

    # The overview of the demo school: a month of learning, not a flat line.
    counts = dict(
        zip(
            page.locator(".stat dt").all_inner_texts(),
            page.locator(".stat dd").all_inner_texts(),
            strict=True,
        )
    )
    assert (
        int(counts["Students"]) >= 30
        and int(counts["Published courses"]) >= 3
        and int(counts["Certificates"]) >= 1
    )
    assert page.locator("svg.chart rect.bar").count() >= 10  # a bar for each day with lessons completed
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    page.get_by_role("link", name="Activity").click()
    table = page.locator("table.events")
    named = table.locator(".target-name").all_inner_texts()
    assert len(named) >= 10 and not any(_RAW_ID.search(name) for name in named)
    shown = table.locator("tbody td:nth-child(4)").all_inner_texts()
    assert not [text for text in shown if _RAW_ID.search(text)], (
        shown
    )  # every student, course, lesson... by name
    # Each time fits one line: one line box, no taller than the row's line height.
    times = table.locator("td.when time")
    assert times.count() >= 10
    for index in range(times.count()):
        lines, height, line_height = times.nth(index).evaluate(
            "t => [t.getClientRects().length, t.getBoundingClientRect().height, parseFloat(getComputedStyle(t).lineHeight)]"
        )
        assert lines == 1 and height <= line_height * 1.2, (index, lines, height, line_height)
    page.screenshot(path=str(shots / "activity.png"), full_page=True)

    # The favicon every browser asks for.
    icon = page.request.get(f"{server.url}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"
    context.close()


def test_an_owner_makes_a_pseudonymous_key_and_its_agent_sees_no_student_by_name(
    server, browser, tmp_path_factory
):
    shots = screenshots_folder(tmp_path_factory.mktemp("dashboard-screenshots"))
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    sign_in_as_demo_owner(page, server.url)
    page.get_by_role("link", name="API keys").click()
    assert page.locator("#identities-full").is_checked(), "full is the default"
    page.get_by_label("Name").fill("Tutor bot")
    page.locator('input[type=checkbox][value="students:read"]').check()
    page.locator("#identities-pseudonymous").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret").input_value()
    page.get_by_role("link", name="API keys").click()
    row = page.locator("tr.key-row", has_text="Tutor bot")
    assert row.locator(".badge.pseudonymous").inner_text() == "pseudonymous"
    page.screenshot(path=str(shots / "dashboard-api-keys-pseudonymous.png"), full_page=True)
    context.close()
    called = _mcp_call(server.url, secret, "list_students")
    students = called.json()["result"]["structuredContent"]["data"]
    assert students and all(re.fullmatch(r"Student [0-9a-f]{8}", student["name"]) for student in students)
    assert all(student["email"].endswith("@pseudonymous.invalid") for student in students)
