"""The MCP Apps views in a real browser inside a real host: a test host page (tests/node/views_host.js,
bundled by esbuild) runs each view in a sandboxed iframe through the official `AppBridge` of
`@modelcontextprotocol/ext-apps`, connected to a running `blohko serve --http` over streamable HTTP
with the TypeScript SDK client. Each view renders a real tool call's result; its buttons' tool calls
reach the server; the browser requests nothing outside the server's own origin.

Screenshots land in a folder the test prints; with BLOHKO_SCREENSHOTS_TO_DOCS=1 they replace
docs/view-*.png (the README shows them)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.chromium import CHROMIUM, chromium, screenshots_folder
from tests.support.node_tools import ROOT, install_node_tools
from tests.support.processes import cli_key, http_server, run_cli, upgraded_env

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
)

HOST_PATH = "/views-test-host"
DESKTOP, PHONE = 760, 375
SPEC_DEFAULT_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' data:; connect-src 'none'"
)
"""What a host applies to a view (SEP-1865's default; a view's `_meta.ui.csp` of no origins adds
nothing): inline scripts run, eval does not. tests/node/views_host.js puts it in each view."""


@pytest.fixture(scope="module")
def demo(databases) -> tuple[dict[str, str], dict]:
    """A migrated database with the demo school: the environment of `blohko` on it, and what
    `blohko demo --json` printed (the producer's id and a full-access key)."""
    env = upgraded_env(databases.new("views-browser"))
    return env, json.loads(run_cli(env, "demo", "--no-serve", "--json").stdout)


@pytest.fixture(scope="module")
def school(demo, tmp_path_factory):
    """`blohko serve --http` on the demo school, and the demo's full-access key."""
    env, printed = demo
    with http_server(env, tmp_path_factory.mktemp("logs") / "http.log") as running:
        yield running.url, printed["key"]


@pytest.fixture(scope="module")
def host_page(tmp_path_factory) -> str:
    """The test host, bundled with the views' own bundler into one page."""
    node = install_node_tools()
    out = tmp_path_factory.mktemp("host") / "host.js"
    done = node.npx(
        "esbuild",
        ROOT / "tests/node/views_host.js",
        "--bundle",
        "--format=esm",
        "--platform=browser",
        "--minify",
        f"--outfile={out}",
    )
    assert done.returncode == 0, done.stderr
    script = out.read_text(encoding="utf-8").replace("</script", "<\\/script")
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Views test host</title></head>'
        '<body style="margin:0"><div id="frame" style="height:100vh"></div>'
        f'<script type="module">{script}</script></body></html>'
    )


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return screenshots_folder(tmp_path_factory.mktemp("view-screenshots"))


def _call(url: str, key: str, name: str, arguments: dict) -> dict:
    """A tool's structured result, called by the Python SDK client (outside the browser)."""

    async def call() -> dict:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            result = await client.call_tool(name, arguments)
            assert not result.is_error, result.content
            return result.structured_content

    # Playwright's sync API runs its own event loop in this thread: the SDK client runs in another.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, call).result()


class _Host:
    """One browser page running the test host at the server's origin, logging every request."""

    def __init__(self, browser, url: str, key: str, html: str, *, width: int, theme: str = "light"):
        self.url, self.key, self.width, self.theme = url, key, width, theme
        self.context = browser.new_context(viewport={"width": width, "height": 1000}, color_scheme=theme)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        # The views' own errors (their document is the iframe's srcdoc); the host's SDK client
        # logs a 405 for the GET stream the stateless server does not offer, and goes on without it.
        self.page.on("console", self._console)
        self.page.route(f"{url}{HOST_PATH}", lambda route: route.fulfill(body=html, content_type="text/html"))
        self.page.goto(f"{url}{HOST_PATH}")

    def _console(self, message) -> None:
        if message.type == "error" and message.location.get("url") == "about:srcdoc":
            self.errors.append(message.text)

    def open(self, tool: str, arguments: dict, *, without_decompression_stream: bool = False):
        opened = self.page.evaluate(
            "args => openView(args)",
            {
                "key": self.key,
                "tool": tool,
                "args": arguments,
                "theme": self.theme,
                "width": self.width,
                "withoutDecompressionStream": without_decompression_stream,
            },
        )
        assert opened["mimeType"] == "text/html;profile=mcp-app"
        assert opened["meta"]["ui"]["csp"] == {
            "connectDomains": [],
            "resourceDomains": [],
            "frameDomains": [],
            "baseUriDomains": [],
        }
        return self.page.frame_locator("iframe")

    def view_frame(self):
        return self.page.locator("iframe").element_handle().content_frame()

    def screenshot(self, folder: Path, name: str) -> None:
        self.page.frame_locator("iframe").locator("main").screenshot(path=folder / f"view-{name}.png")

    def close(self) -> None:
        outside = [
            request
            for request in self.requests
            if not request.startswith(self.url) and not request.startswith(("data:", "about:"))
        ]
        self.context.close()
        assert outside == [], f"requests outside the server's origin: {outside}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture
def host(browser, school, host_page):
    opened: list[_Host] = []

    def open_host(*, width: int = DESKTOP, theme: str = "light") -> _Host:
        url, key = school
        opened.append(_Host(browser, url, key, host_page, width=width, theme=theme))
        return opened[-1]

    yield open_host
    for each in opened:
        each.close()


def _published_course(url: str, key: str) -> dict:
    courses = _call(url, key, "list_courses", {"limit": 100})["data"]
    return next(course for course in courses if course["published"])


def test_the_course_view_shows_the_outline_and_the_funnel_in_light_and_dark(host, school, screenshots):
    url, key = school
    course = _call(url, key, "get_course", {"courseId": _published_course(url, key)["id"]})["course"]
    first_lesson = course["sections"][0]["lessons"][0]["title"]
    # Opened by either tool: each view fetches the other part through the host.
    for theme, tool, shot in (
        ("light", "get_course", "course"),
        ("dark", "get_course_insights", "course-dark"),
    ):
        page = host(theme=theme)
        view = page.open(tool, {"courseId": course["id"]})
        view.get_by_role("heading", name=course["title"]).wait_for()
        view.get_by_text(first_lesson, exact=True).first.wait_for()
        view.get_by_role("heading", name="Lesson funnel").wait_for()
        assert view.get_by_text("published", exact=True).count() == 1
        background = view.locator("body").evaluate("body => getComputedStyle(body).backgroundColor")
        assert background == ("rgb(23, 25, 30)" if theme == "dark" else "rgb(255, 255, 255)")
        page.screenshot(screenshots, shot)


def test_the_attention_view_asks_the_host_to_draft_a_message_and_opens_the_student_at_phone_width(
    host, school, screenshots
):
    url, key = school
    first = _call(url, key, "find_students_needing_attention", {"limit": 5})["data"][0]
    student = _call(url, key, "get_student", {"studentId": first["studentId"]})["student"]
    page = host(width=PHONE)
    view = page.open("find_students_needing_attention", {"limit": 5})
    view.get_by_role("heading", name="Learners needing attention").wait_for()
    view.get_by_role("button", name=f"Draft a message to {first['studentName']}").first.click()
    view.get_by_text("Asked the assistant to draft a message.").first.wait_for()
    messages = page.page.evaluate("window.viewMessages")
    assert first["studentName"] in messages[0]["content"][0]["text"] and messages[0]["role"] == "user"

    view.get_by_role("button", name=f"Open {first['studentName']}").first.click()
    view.get_by_text(student["email"]).first.wait_for()  # get_student, called by the view
    width = view.locator("main").evaluate("main => main.scrollWidth")
    assert width <= PHONE, f"the view is {width}px wide at a {PHONE}px phone"
    page.screenshot(screenshots, "attention")


def test_the_thread_view_posts_a_reply_from_the_keyboard_that_get_thread_then_shows(
    host, school, screenshots
):
    url, key = school
    community = _call(url, key, "list_communities", {"limit": 1})["data"][0]
    thread = _call(url, key, "list_threads", {"communityId": community["id"], "limit": 1})["data"][0]
    args = {"communityId": community["id"], "threadId": thread["id"]}
    page = host()
    view = page.open("get_thread", args)
    view.get_by_role("heading", name=thread["title"]).wait_for()
    reply = f"Thanks, everyone: see you at the live session ({uuid.uuid4().hex[:6]})."
    view.get_by_label("Your reply").focus()
    page.page.keyboard.type(reply)
    page.page.keyboard.press("Tab")
    page.page.keyboard.press("Enter")  # the focused "Post reply" button
    view.get_by_text("Reply posted.").wait_for()
    view.get_by_text(reply).wait_for()

    comments = _call(url, key, "get_thread", args)["thread"]["comments"]
    assert reply in [comment["content"] for comment in comments]
    page.screenshot(screenshots, "thread")


def test_the_report_view_charts_each_figure_against_the_period_before(host, school, screenshots):
    url, key = school
    report = _call(url, key, "get_school_report", {})["report"]
    page = host()
    view = page.open("get_school_report", {})
    view.get_by_role("heading", name="School report").wait_for()
    enrollments = report["learning"]["enrollments"]
    view.get_by_role(
        "img", name=f"Enrollments: {enrollments['value']} now, {enrollments['previous']} before"
    ).wait_for()
    assert view.locator("svg[role=img]").count() == sum(
        len(report[part]) for part in ("students", "learning", "community")
    )
    page.screenshot(screenshots, "report")


def test_a_key_that_may_only_read_communities_gets_the_thread_without_a_reply_box(
    browser, demo, school, host_page
):
    env, printed = demo
    url, key = school
    reader = cli_key(env, printed["producerId"], "communities:read")
    community = _call(url, key, "list_communities", {"limit": 1})["data"][0]
    thread = _call(url, key, "list_threads", {"communityId": community["id"], "limit": 1})["data"][0]
    page = _Host(browser, url, reader, host_page, width=DESKTOP)
    try:
        view = page.open("get_thread", {"communityId": community["id"], "threadId": thread["id"]})
        view.get_by_text("Replying needs the communities:write permission.").wait_for()
        view.get_by_role("heading", name="Comments").wait_for()
        assert view.get_by_role("button").count() == 0
    finally:
        page.close()


def test_a_view_unpacks_and_runs_its_script_under_the_specs_default_csp_which_refuses_eval(host):
    page = host()
    view = page.open("get_school_report", {})
    view.get_by_role("heading", name="School report").wait_for()  # the unpacked script ran
    frame = page.view_frame()
    policies = frame.evaluate(
        "() => [...document.querySelectorAll('meta[http-equiv=Content-Security-Policy]')].map(m => m.content)"
    )
    assert policies == [SPEC_DEFAULT_CSP]
    # The policy is in force: an inline module script added as the loader adds the view's runs, and
    # its eval, which no view does, is refused and reported as any violation by a view would be (the
    # fixture fails a test on any console error of a view). A module runs after Playwright's
    # evaluation returns, which DevTools lets eval for its own duration.
    frame.evaluate(
        """() => {
            const probe = document.createElement("script");
            probe.type = "module";
            probe.textContent = "try { new Function('return 1'); document.body.dataset.eval = 'allowed'; }"
                + " catch (error) { document.body.dataset.eval = error.name; }";
            document.head.append(probe);
        }"""
    )
    assert frame.wait_for_function("() => document.body.dataset.eval").json_value() == "EvalError"
    frame.wait_for_function("() => new Promise((resolve) => setTimeout(resolve, 100, true))")
    assert page.errors == ["CSP violation: script-src blocked eval"]
    page.errors.clear()


def test_a_browser_without_decompression_stream_is_told_what_the_view_needs(host):
    page = host()
    view = page.open("get_school_report", {}, without_decompression_stream=True)
    view.get_by_text(
        "This view needs a browser with DecompressionStream (Chromium 80+, Firefox 113+, Safari 16.4+)."
    ).wait_for()
    assert view.get_by_role("heading", name="School report").count() == 0
