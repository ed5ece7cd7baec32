"""Debian's Chromium, headless, as the browser tests drive it through Playwright, and the steps
those tests share: a page whose console errors are collected, the demo owner's sign-in, and
where screenshots go."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

DOCS = Path(__file__).parents[2] / "docs"
SCREENSHOTS_TO_DOCS = "BLOHKO_SCREENSHOTS_TO_DOCS"
"""Set (to 1) to write the screenshots over their files in docs/; otherwise they land in a
temporary folder the test prints."""


def screenshots_folder(temporary: Path) -> Path:
    """Where a test saves its screenshots: docs/ when `SCREENSHOTS_TO_DOCS` is set, else `temporary`."""
    shots = DOCS if os.environ.get(SCREENSHOTS_TO_DOCS) else temporary
    print(f"\nscreenshots: {shots}")
    return shots


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium, launched for the block (a test module's browser fixture)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_page(**options: Any) -> Iterator[tuple[Page, list[str]]]:
    """A new page in headless Chromium (1280×900 unless `options` say otherwise) and the list its
    console errors are collected into, for the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(**{"viewport": {"width": 1280, "height": 900}, **options})
            errors: list[str] = []
            page.on(
                "console", lambda message: errors.append(message.text) if message.type == "error" else None
            )
            yield page, errors
        finally:
            browser.close()


def sign_in_as_demo_owner(page: Page, url: str) -> None:
    """Sign `page` in to the dashboard at `url` as the demo school's owner, landing on the overview."""
    from server.demo import DEMO_EMAIL, DEMO_PASSWORD

    page.goto(f"{url}/dashboard/sign-in")
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dashboard$"))
