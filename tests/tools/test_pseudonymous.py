"""Pseudonymous keys, generated from the catalog: through a key made with `identities:
"pseudonymous"`, no answer of any tool it can see names a student (name or email), whatever the
tool; each student is one stable pseudonym per key and another one through another key; searching
by name or email is refused; writes by id still work; the event feed and a pseudonymous webhook
endpoint's deliveries name no one either. A new tool is covered without anyone remembering."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from typing import Any

import pytest

from server.sample_data import create_sample_data
from tests.support.community_factories import MEDIA
from tests.support.dashboard import csrf_of, signed_in
from tests.support.factories import Tenant, add_key, error, mcp_client, ok, principal_of, text_of
from tests.support.mcp_http import mcp_post
from tests.support.oauth import connect, owner_browser, server
from tests.support.rest import http_app, rest_client, small_sample
from tests.support.webhooks import delivering, receiver, settle
from tests.tools.test_generated_matrices import filler, id_arguments
from tools.core.context import Services
from tools.core.pseudonyms import PSEUDONYM_EMAIL_DOMAIN, pseudonym
from tools.registry import TOOLS

PSEUDONYM = re.compile(r"^Student [0-9a-f]{8}$")


def _people() -> tuple[dict[str, Any], ...]:
    """Students whose names and emails appear nowhere else: any match in an answer is a leak."""
    tag = secrets.token_hex(3)
    return tuple(
        {
            "name": name,
            "email": f"{name.split()[0].lower()}-{tag}@school.example",
            "password": "securepass123",
        }
        for name in ("Zephyrine Quillfeather", "Bartholomew Xylander", "Ottoline Vasquezova")
    )


@pytest.fixture
async def school(store, tenant: Tenant) -> dict[str, Any]:
    """A school with one of everything, students as enrolled learners, members, a certificate,
    thread and comment authors and uploaders; ids by argument name, and the identities to hide."""
    people = _people()
    sample = dataclasses.replace(small_sample(), students=people)
    world = await create_sample_data(
        store, principal_of(tenant), owner_user_id=tenant.owner_user_id, sample=sample
    )
    async with mcp_client(store, tenant.key) as client:
        # A student's own thread, waiting for an answer (insights name its author) and a student's media.
        ok(
            await client.call_tool(
                "create_thread",
                {
                    "communityId": world["communityId"],
                    "userId": world["studentId"],
                    "title": "A question",
                    "content": "Anyone?",
                },
            )
        )
        ok(
            await client.call_tool(
                "add_media",
                {"communityId": world["communityId"], "userId": world["studentId"], **MEDIA},
            )
        )
    secrets_ = [person["name"] for person in people] + [person["email"] for person in people]
    # First and last names alone, too: a name may be cut, as a title would quote it.
    secrets_ += [part for person in people for part in person["name"].split()]
    return {"ids": world, "hidden": secrets_, "people": people}


def _leaks(payload: Any, hidden: list[str]) -> list[str]:
    text = json.dumps(payload, ensure_ascii=False).lower()
    return [value for value in hidden if value.lower() in text]


def _ordered_tools() -> list:
    """Reads first, then writes, deletes last: a delete would leave later calls nothing to show."""
    return sorted(TOOLS, key=lambda op: (not op.read_only, op.destructive))


async def test_no_tool_answers_a_students_name_or_email_through_a_pseudonymous_key(store, tenant, school):
    key = await add_key(store, tenant, ["*"], identities="pseudonymous")
    ids, hidden = school["ids"], school["hidden"]
    answered: dict[str, bool] = {}
    pseudonyms_seen: set[str] = set()
    async with mcp_client(store, key) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        for op in _ordered_tools():
            if op.name not in listed:
                continue
            arguments = {**filler(op), **{name: ids[name] for name in id_arguments(op) if name in ids}}
            result = await client.call_tool(op.name, arguments)
            body = json.loads(text_of(result))
            assert _leaks(body, hidden) == [], f"{op.name} named a student: {body}"
            assert _leaks(result.structured_content, hidden) == [], f"{op.name} named a student"
            answered[op.name] = not result.is_error
            pseudonyms_seen |= set(re.findall(r"Student [0-9a-f]{8}", text_of(result)))
        # After every write: the feed holds every event the school made, payloads and all.
        events = ok(await client.call_tool("list_events", {"limit": 100}))
    assert _leaks(events, hidden) == []
    assert len(answered) == len(listed), "every tool the key sees was called"
    # The calls reached the answers that carry students, not only errors.
    for name in (
        "list_students",
        "get_student",
        "list_enrollments",
        "list_certificates",
        "list_achievements",
        "list_members",
        "list_threads",
        "list_comments",
        "list_media",
        "get_community_insights",
        "list_events",
        "list_audit_events",
    ):
        assert answered.get(name), f"{name} was not answered: the test missed what it carries"
    assert len(pseudonyms_seen) >= 3


async def _student_as_seen(store, key: str, student_id: str) -> dict[str, Any]:
    async with mcp_client(store, key) as client:
        return ok(await client.call_tool("get_student", {"studentId": student_id}))["student"]


async def test_a_student_is_one_pseudonym_per_key_and_another_through_another_key(store, tenant, school):
    first, second = [await add_key(store, tenant, ["*"], identities="pseudonymous") for _ in range(2)]
    student_id = school["ids"]["studentId"]
    seen_first = [await _student_as_seen(store, first, student_id) for _ in range(2)]
    seen_second = await _student_as_seen(store, second, student_id)
    seen_full = await _student_as_seen(store, tenant.key, student_id)
    assert seen_first[0] == seen_first[1], "stable across calls through one key"
    assert PSEUDONYM.match(seen_first[0]["name"]) and PSEUDONYM.match(seen_second["name"])
    assert seen_first[0]["name"] != seen_second["name"]
    assert seen_first[0]["email"].endswith(f"@{PSEUDONYM_EMAIL_DOMAIN}")
    assert seen_first[0]["avatarUrl"] is None and seen_first[0]["bio"] is None
    assert seen_first[0]["id"] == seen_full["id"] == student_id, "ids stay: writes need them"
    assert seen_full["name"] == school["people"][0]["name"], "a full key still sees the name"


async def test_the_same_student_has_the_same_pseudonym_in_every_answer(store, tenant, school):
    key = await add_key(store, tenant, ["*"], identities="pseudonymous")
    ids = school["ids"]
    async with mcp_client(store, key) as client:
        me = ok(await client.call_tool("whoami", {}))
        student = ok(await client.call_tool("get_student", {"studentId": ids["studentId"]}))["student"]
        enrollments = ok(await client.call_tool("list_enrollments", {"studentId": ids["studentId"]}))
        comments = ok(
            await client.call_tool(
                "list_comments", {"communityId": ids["communityId"], "threadId": ids["threadId"]}
            )
        )
    assert me["key"]["identities"] == "pseudonymous"
    assert student["name"] == pseudonym(me["key"]["id"], ids["studentId"])
    assert {row["studentName"] for row in enrollments["data"]} == {student["name"]}
    assert student["name"] in {comment["author"]["name"] for comment in comments["data"]}


async def test_searching_students_by_name_or_email_is_refused(store, tenant, school):
    key = await add_key(store, tenant, ["*"], identities="pseudonymous")
    person = school["people"][0]
    async with mcp_client(store, key) as client:
        by_name = error(await client.call_tool("list_students", {"search": person["name"]}))
        by_email = error(
            await client.call_tool(
                "enroll_students", {"courseId": school["ids"]["courseId"], "emails": [person["email"]]}
            )
        )
        listed = ok(await client.call_tool("list_students", {}))
    assert by_name["error"] == by_email["error"] == "forbidden"
    assert "pseudonymous" in by_name["message"] and "search" in by_name["message"]
    assert "emails" in by_email["message"]
    assert _leaks([by_name, by_email], school["hidden"]) == []
    assert len(listed["data"]) == 3, "listing without a search still works"


async def test_writes_by_id_work_and_answer_pseudonyms(store, tenant, school):
    key = await add_key(store, tenant, ["*"], identities="pseudonymous")
    ids = school["ids"]
    async with mcp_client(store, key) as client:
        enrolled = ok(
            await client.call_tool(
                "enroll_student", {"studentId": ids["otherStudentId"], "courseId": ids["courseId"]}
            )
        )
        registered = ok(
            await client.call_tool(
                "register_student", {"name": "Quintessa Moonwhistle", "email": "quintessa@school.example"}
            )
        )
    assert enrolled["enrollment"]["studentId"] == ids["otherStudentId"]
    assert PSEUDONYM.match(enrolled["enrollment"]["studentName"])
    assert _leaks([enrolled, registered], [*school["hidden"], "Quintessa", "quintessa@school.example"]) == []
    async with mcp_client(store, tenant.key) as client:
        real = ok(await client.call_tool("get_student", {"studentId": registered["student"]["id"]}))
    assert real["student"]["name"] == "Quintessa Moonwhistle", "the write stored the real name"


async def test_a_pseudonymous_webhook_endpoint_gets_payloads_without_identities(store, tenant):
    people = _people()
    with receiver() as hooks:
        async with mcp_client(store, tenant.key, services=Services(webhooks_allow_loopback=True)) as client:
            endpoint = ok(
                await client.call_tool(
                    "create_webhook",
                    {"url": hooks.url, "eventTypes": ["student.registered"], "identities": "pseudonymous"},
                )
            )["webhook"]
            for person in people:
                ok(await client.call_tool("register_student", person))
        async with delivering(store):
            await settle(store, lambda deliveries, _: all(d.state == "succeeded" for d in deliveries))
    assert endpoint["identities"] == "pseudonymous"
    payloads = [request.event for request in hooks.received]
    assert len(payloads) == len(people)
    assert _leaks(payloads, [person["email"] for person in people] + [p["name"] for p in people]) == []
    names = {payload["data"]["name"] for payload in payloads}
    assert all(PSEUDONYM.match(name) for name in names) and len(names) == len(people)
    assert {payload["data"]["name"] for payload in payloads} == {
        pseudonym(endpoint["id"], payload["data"]["id"]) for payload in payloads
    }


async def test_an_oauth_grant_without_identities_answers_pseudonyms(store, tenant, school):
    async with server(store) as client, owner_browser(client, tenant) as browser:
        _, issued = await connect(client, browser, permissions=["*"], identities="pseudonymous")
        token = issued["access_token"]
        calls = {
            "whoami": {},
            "list_students": {},
            "list_enrollments": {},
            "list_members": {"communityId": school["ids"]["communityId"]},
            "list_events": {},
        }
        answers = {}
        for name, arguments in calls.items():
            called = await mcp_post(client, token, "tools/call", {"name": name, "arguments": arguments})
            assert called.status_code == 200 and not called.json()["result"].get("isError"), called.text
            answers[name] = called.json()["result"]["structuredContent"]
        searched = await mcp_post(
            client, token, "tools/call", {"name": "list_students", "arguments": {"search": "Zephyrine"}}
        )
        apps = await browser.get("/dashboard/apps")
    assert _leaks(answers, school["hidden"]) == []
    assert answers["whoami"]["key"]["identities"] == "pseudonymous"
    assert all(PSEUDONYM.match(student["name"]) for student in answers["list_students"]["data"])
    assert searched.json()["result"]["isError"] and "pseudonymous" in searched.text
    assert 'class="badge pseudonymous"' in apps.text


async def test_the_dashboard_key_form_makes_a_pseudonymous_key_that_rest_answers_with_pseudonyms(
    store, tenant, school
):
    async with signed_in(store, tenant) as browser:
        form = await browser.get("/dashboard/keys")
        assert 'name="identities" value="pseudonymous"' in form.text
        made = await browser.post(
            "/dashboard/keys",
            data={
                "csrf_token": csrf_of(form),
                "name": "Tutor bot",
                "permissions": "*",
                "identities": "pseudonymous",
            },
        )
        assert made.status_code == 200, made.text
        key = re.search(r'value="(blk_[^"]+)" data-secret', made.text)
        listed = await browser.get("/dashboard/keys")
    assert key is not None
    assert listed.text.count('class="badge pseudonymous"') == 1, "only the new key is pseudonymous"
    async with rest_client(http_app(store), key.group(1)) as api:
        students = await api.get("/students")
        me = await api.get("/whoami")
        searched = await api.get("/students", params={"search": school["people"][0]["email"]})
    assert students.status_code == 200 and _leaks(students.json(), school["hidden"]) == []
    assert all(PSEUDONYM.match(student["name"]) for student in students.json()["data"])
    assert me.json()["key"]["identities"] == "pseudonymous"
    assert searched.status_code == 403 and _leaks(searched.json(), school["hidden"]) == []


async def test_the_dashboard_webhook_form_makes_a_pseudonymous_endpoint_and_shows_the_choice(store, tenant):
    with receiver() as hooks:
        async with signed_in(store, tenant, webhooks_allow_loopback=True) as browser:
            form = await browser.get("/dashboard/webhooks")
            assert 'name="identities" value="pseudonymous"' in form.text
            assert "cannot be searched for" not in form.text, "a webhook's payloads are not searched"
            made = await browser.post(
                "/dashboard/webhooks",
                data={"csrf_token": csrf_of(form), "url": hooks.url, "identities": "pseudonymous"},
            )
            assert made.status_code == 200, made.text
            listed = await browser.get("/dashboard/webhooks")
            webhook_id = re.search(r'data-webhook-id="([^"]+)"', listed.text)
            assert webhook_id is not None
            detail = await browser.get(f"/dashboard/webhooks/{webhook_id.group(1)}")
    assert listed.text.count('class="badge pseudonymous"') == 1
    assert 'Students in payloads: <span class="badge pseudonymous"' in detail.text
    async with mcp_client(store, tenant.key) as client:
        endpoints = ok(await client.call_tool("list_webhooks", {}))["data"]
    assert [endpoint["identities"] for endpoint in endpoints] == ["pseudonymous"]
