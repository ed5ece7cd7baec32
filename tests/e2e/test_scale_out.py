"""Scale-out on PostgreSQL: two real `blohko serve --http` processes on one database behave as one
server. A client alternating between them sees one consistent platform; a key revoked through
one is refused by the other at once; the concurrency rules hold across processes."""

from __future__ import annotations

from contextlib import asynccontextmanager
from itertools import cycle

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.factories import DEFAULT_CATEGORY_ID, ok
from tests.support.processes import cli_env, cli_json, http_server, run_cli

pytestmark = pytest.mark.postgres_only

OWNER_PASSWORD = "scale-out-owner-1"


@pytest.fixture(scope="module")
def platform(databases, tmp_path_factory):
    """Two server processes on one fresh PostgreSQL database, a producer, and a full-access key."""
    env = cli_env(databases.new("scaleout"), BLOHKO_RATE_LIMIT_PER_MINUTE="0")
    run_cli(env, "db", "upgrade")
    producer = cli_json(
        env,
        "producers",
        "create",
        "--name",
        "Scale Academy",
        "--email",
        "owner@scale.example",
        "--password",
        OWNER_PASSWORD,
    )
    key = cli_json(
        env, "keys", "create", "--producer", producer["id"], "--name", "scale", "--permissions", "*"
    )
    logs = tmp_path_factory.mktemp("scale-logs")
    with http_server(env, logs / "a.log") as first, http_server(env, logs / "b.log") as second:
        yield {"servers": (first, second), "key": key, "producer": producer, "env": env}


@asynccontextmanager
async def mcp_over_http(url: str, key: str):
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_a_client_alternating_between_two_processes_sees_one_platform(platform):
    first, second = platform["servers"]
    key = platform["key"]["key"]
    async with mcp_over_http(first.url, key) as a, mcp_over_http(second.url, key) as b:
        course = ok(
            await a.call_tool(
                "create_course",
                {"title": "Shared", "slug": "shared-course", "categoryId": DEFAULT_CATEGORY_ID},
            )
        )["course"]
        section = ok(await b.call_tool("create_section", {"courseId": course["id"], "title": "Part 1"}))[
            "section"
        ]
        lessons = [
            ok(
                await client.call_tool(
                    "create_lesson", {"courseId": course["id"], "sectionId": section["id"], "title": f"L{n}"}
                )
            )["lesson"]
            for n, client in zip(range(4), cycle((a, b)))
        ]
        student = ok(
            await a.call_tool("register_student", {"name": "Roaming Student", "email": "roam@scale.example"})
        )["student"]
        enrollment = ok(
            await b.call_tool("enroll_student", {"studentId": student["id"], "courseId": course["id"]})
        )["enrollment"]
        for lesson, client in zip(lessons, cycle((a, b))):
            ok(
                await client.call_tool(
                    "update_progress",
                    {"enrollmentId": enrollment["id"], "lessonId": lesson["id"], "completed": True},
                )
            )
        seen_by_a = ok(await a.call_tool("get_enrollment", {"enrollmentId": enrollment["id"]}))["enrollment"]
        seen_by_b = ok(await b.call_tool("get_enrollment", {"enrollmentId": enrollment["id"]}))["enrollment"]
        course_a = ok(await a.call_tool("get_course", {"courseId": course["id"]}))["course"]
        course_b = ok(await b.call_tool("get_course", {"courseId": course["id"]}))["course"]
        certificates = ok(await a.call_tool("list_certificates", {"studentId": student["id"]}))["data"]
    assert seen_by_a == seen_by_b
    assert seen_by_a["progress"] == {"completedLessons": 4, "totalLessons": 4, "percent": 100}
    assert course_a == course_b and [lesson["order"] for lesson in course_a["sections"][0]["lessons"]] == [
        0,
        1,
        2,
        3,
    ]
    assert len(certificates) == 1


async def test_a_key_revoked_through_one_process_is_refused_by_the_other_at_once(platform):
    first, second = platform["servers"]
    env, producer = platform["env"], platform["producer"]
    doomed = cli_json(
        env, "keys", "create", "--producer", producer["id"], "--name", "doomed", "--permissions", "*"
    )
    headers = {"Authorization": f"Bearer {doomed['key']}"}
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{second.url}/api/v1/students", headers=headers)).status_code == 200
        login = await http.post(
            f"{first.url}/api/v1/auth/login",
            json={"email": "owner@scale.example", "password": OWNER_PASSWORD},
        )
        session = {"Authorization": f"Bearer {login.json()['session']['token']}"}
        revoked = await http.delete(
            f"{first.url}/api/v1/api-keys", params={"id": doomed["id"]}, headers=session
        )
        refused = await http.get(f"{second.url}/api/v1/students", headers=headers)
        refused_mcp = await http.post(
            f"{second.url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={**headers, "Accept": "application/json, text/event-stream"},
        )
    assert revoked.status_code == 200
    assert refused.status_code == 401 and refused.json()["message"] == "This API key has been revoked"
    assert refused_mcp.status_code == 401


async def _spread(count: int, servers, send) -> list[httpx.Response]:
    """`count` requests at once, alternating between the processes."""
    responses: list[httpx.Response] = []
    async with httpx.AsyncClient(timeout=120) as http:

        async def one(n: int) -> None:
            responses.append(await send(http, servers[n % 2].url, n))

        async with anyio.create_task_group() as group:
            for n in range(count):
                group.start_soon(one, n)
    return responses


async def test_50_concurrent_enrollments_across_processes_exactly_one_succeeds(platform):
    servers, key = platform["servers"], platform["key"]["key"]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"{servers[0].url}/api/v1", headers=headers) as http:
        student = (
            await http.post("/students", json={"name": "Racer", "email": "racer@scale.example"})
        ).json()["student"]
        course = (
            await http.post(
                "/courses", json={"title": "Race", "slug": "race-course", "categoryId": DEFAULT_CATEGORY_ID}
            )
        ).json()["course"]

    async def enroll(http, url, _):
        return await http.post(
            f"{url}/api/v1/enrollments",
            json={"studentId": student["id"], "courseId": course["id"]},
            headers=headers,
        )

    responses = await _spread(50, servers, enroll)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 49


async def test_50_concurrent_progress_updates_across_processes_one_certificate(platform):
    servers, key = platform["servers"], platform["key"]["key"]
    headers = {"Authorization": f"Bearer {key}"}
    lessons = [{"title": f"L{n}"} for n in range(25)]
    async with httpx.AsyncClient(base_url=f"{servers[1].url}/api/v1", headers=headers) as http:
        student = (
            await http.post("/students", json={"name": "Sprinter", "email": "sprint@scale.example"})
        ).json()["student"]
        course = (
            await http.post(
                "/courses",
                json={
                    "title": "Sprint",
                    "slug": "sprint-course",
                    "categoryId": DEFAULT_CATEGORY_ID,
                    "sections": [{"title": "S", "lessons": lessons}],
                },
            )
        ).json()["course"]
        lesson_ids = [lesson["id"] for lesson in course["sections"][0]["lessons"]]
        enrollment = (
            await http.post("/enrollments", json={"studentId": student["id"], "courseId": course["id"]})
        ).json()["enrollment"]

    async def complete(http, url, n):
        body = {"lessonId": lesson_ids[n % 25], "completed": True, "watchedSeconds": n}
        return await http.patch(f"{url}/api/v1/enrollments/{enrollment['id']}", json=body, headers=headers)

    responses = await _spread(50, servers, complete)
    assert [response.status_code for response in responses] == [200] * 50
    issued = [
        r.json()["events"]["certificateIssued"] for r in responses if r.json()["events"]["certificateIssued"]
    ]
    async with httpx.AsyncClient(base_url=f"{servers[0].url}/api/v1", headers=headers) as http:
        final = (await http.get(f"/enrollments/{enrollment['id']}")).json()["enrollment"]
        certificates = (await http.get("/certificates", params={"studentId": student["id"]})).json()["data"]
    assert final["progress"] == {"completedLessons": 25, "totalLessons": 25, "percent": 100}
    assert len(issued) == 1 and len(certificates) == 1
