"""The dashboard as a newcomer first sees it: the activity log names
students, courses, communities, threads and keys rather than showing raw ids (in a few set-based
statements a page, not one per row); a favicon; the webhook form says how to test locally."""

from __future__ import annotations

import re

from tests.support.dashboard import csrf_of, dashboard, signed_in
from tests.support.factories import mcp_client, ok, statements, text_of
from tests.support.rest import run, seed
from tests.support.text import match_in

_TARGET = re.compile(r'<span class="target"><span class="muted">([^<]+)</span> (.*?)</span> ')


def _targets(page: str) -> list[tuple[str, str]]:
    """(label, what is shown) of every target on an Activity page, tags stripped."""
    return [(label, re.sub(r"<[^>]+>", "", shown)) for label, shown in _TARGET.findall(page)]


async def test_the_activity_log_shows_names_and_titles_where_the_records_keep_ids(store, tenant):
    ids = (
        await seed(store, tenant)
    ).ids  # Jane Smith enrolled in "A Course", a thread "Hello" in "Weekly Wins"
    section = (await run(store, tenant, "create_section", courseId=ids["courseId"], title="Going Further"))[
        "section"
    ]
    await run(
        store,
        tenant,
        "create_lesson",
        courseId=ids["courseId"],
        sectionId=section["id"],
        title="Generics",
        duration=60,
    )
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/keys"))
        await client.post(
            "/dashboard/keys",
            data={"name": "Course reader", "permissions": "courses:read", "csrf_token": token},
        )
        page = (await client.get("/dashboard/activity")).text
    shown = _targets(page)
    assert ("student", "Jane Smith") in shown and ("user", "Jane Smith") in shown
    assert (
        ("course", "A Course") in shown
        and ("section", "Going Further") in shown
        and ("lesson", "Generics") in shown
    )
    assert ("category", "Web Development") in shown and ("member", "Jane Smith in Weekly Wins") in shown
    assert ("community", "Weekly Wins") in shown and ("thread", "Hello") in shown
    assert ("enrollment", "Jane Smith in A Course") in shown
    assert ("api key", "Course reader") in shown
    assert ("user", "Acme Academy") in shown  # the owner (named after the school here) signing in
    for made in (ids["studentId"], ids["courseId"], ids["communityId"], ids["threadId"]):
        assert f'title="{made}"' in page  # the id stays at hand, on hover
        assert f"<code>{made}</code>" not in page


async def test_an_id_whose_row_is_gone_stays_an_id_marked_not_found(store, tenant, tenant_factory):
    ids = (await seed(store, tenant)).ids
    other = await tenant_factory("Other Academy")
    await run(store, tenant, "delete_thread", communityId=ids["communityId"], threadId=ids["threadId"])
    async with signed_in(store, tenant) as client:
        token = csrf_of(await client.get("/dashboard/keys"))
        await client.post(
            "/dashboard/keys/revoke", data={"id": other.key_id, "csrf_token": token}
        )  # not ours: not found
        page = (await client.get("/dashboard/activity")).text
    shown = _targets(page)
    assert ("thread", f"{ids['threadId']} (not found)") in shown and ("thread", "Hello") not in shown
    assert ("key", f"{other.key_id} (not found)") in shown  # another school's key: never named here
    assert "Other Academy" not in page and other.key_id in page


async def test_the_activity_page_names_its_targets_in_the_same_statements_however_many_rows(store, tenant):
    await seed(store, tenant)  # two students registered

    async def registrations_page() -> tuple[int, int]:
        """How many students the page names, and in how many statements it was served."""
        async with signed_in(store, tenant) as client:
            with statements(store) as seen:
                page = await client.get("/dashboard/activity", params={"operation": "register_student"})
        return len(re.findall(r'<span class="target-name" title="user_', page.text)), len(seen)

    named, few = await registrations_page()
    async with mcp_client(store, tenant.key) as mcp:
        for number in range(15):
            ok(
                await mcp.call_tool(
                    "register_student", {"name": f"Student {number}", "email": f"s{number}@example.com"}
                )
            )
    named_more, more = await registrations_page()
    assert (named, named_more) == (2, 17) and more == few


async def test_the_site_has_a_favicon(store):
    async with dashboard(store) as client:
        icon = await client.get("/favicon.ico")
        sign_in = await client.get("/dashboard/sign-in")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file's header: reserved 0, type 1 (icon)
    assert icon.content[22:30] == b"\x89PNG\r\n\x1a\n"  # its one image, a PNG
    assert '<link rel="icon" href="/favicon.ico"' in sign_in.text


async def test_a_refused_loopback_webhook_url_says_how_to_test_locally(store, tenant):
    async with signed_in(store, tenant) as client:
        form = await client.get("/dashboard/webhooks")
        refused = await client.post(
            "/dashboard/webhooks",
            data={"url": "http://127.0.0.1:9000/hook", "description": "", "csrf_token": csrf_of(form)},
        )
    assert "BLOHKO_WEBHOOKS_ALLOW_LOOPBACK=1" in form.text  # said before, beside the field
    assert refused.status_code == 400
    error = match_in(r'<div class="alert error" role="alert">(.*?)</div>', refused.text, re.DOTALL).group(1)
    assert "only public addresses are reached" in error
    assert "BLOHKO_WEBHOOKS_ALLOW_LOOPBACK=1" in error and "tunnel" in error


async def test_a_refused_private_webhook_url_gets_no_loopback_hint(store, tenant):
    async with mcp_client(store, tenant.key) as mcp:
        refused = await mcp.call_tool("create_webhook", {"url": "https://10.0.0.7/hook"})
    assert refused.is_error and "private, loopback or reserved" in text_of(refused)
    assert "BLOHKO_WEBHOOKS_ALLOW_LOOPBACK" not in text_of(refused)  # the setting would not admit it


async def test_the_connect_page_says_why_its_claude_desktop_config_differs_from_the_readme(store, tenant):
    async with signed_in(store, tenant) as client:
        page = (await client.get("/dashboard/connect")).text
    assert "mcp-remote" in page and "blohko serve" in page and "over stdio" in page
