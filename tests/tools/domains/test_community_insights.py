"""get_community_insights: a community's week, day by day, and the threads waiting for an answer."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.clock import Clock
from tests.support.community_factories import (
    call,
    new_comment,
    new_community,
    new_student,
    new_thread,
    refuse,
)
from tests.support.factories import add_key, mcp_client
from tests.support.rest import rest_client
from tools.core.models import format_utc

TOOL = "get_community_insights"


def _at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


async def _community(client, clock: Clock) -> dict:
    """Seen on March 23 at 12:00 over 7 days (March 17 to 23):

    - Ann and Bob joined on March 16, Cat exactly at midnight March 17 (the window's first instant);
    - Ann asked "Old question" on March 16 and only she commented on it (same day): waiting;
    - Bob asked "Answered" on March 20 at 9:00 and Ann answered at 9:30; Cat commented at 23:59 on March 22;
    - Bob asked "New" exactly at midnight March 23: 12 hours old.
    """
    clock.now = _at(16, 9)
    community = await new_community(client)
    ann, bob, cat = [await new_student(client, name) for name in ("Ann", "Bob", "Cat")]
    for user in (ann, bob):
        await call(client, "add_member", communityId=community["id"], userId=user, role="member")
    clock.now = _at(16, 10)
    old = await new_thread(client, community["id"], ann, title="Old question")
    clock.now = _at(16, 11)
    await new_comment(client, community["id"], old["id"], ann, content="Anyone?")
    clock.now = _at(17)
    await call(client, "add_member", communityId=community["id"], userId=cat, role="member")
    clock.now = _at(20, 9)
    answered = await new_thread(client, community["id"], bob, title="Answered")
    clock.now = _at(20, 9, 30)
    await new_comment(client, community["id"], answered["id"], ann)
    clock.now = _at(22, 23, 59)
    await new_comment(client, community["id"], answered["id"], cat)
    clock.now = _at(23)
    new = await new_thread(client, community["id"], bob, title="New")
    clock.now = _at(23, 12)
    return {
        "community": community,
        "users": {"ann": ann, "bob": bob, "cat": cat},
        "threads": {"old": old["id"], "answered": answered["id"], "new": new["id"]},
    }


async def test_a_week_of_a_community_day_by_day_with_its_posters_and_waiting_threads(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        world = await _community(client, clock)
        insights = (await call(client, TOOL, communityId=world["community"]["id"]))["insights"]
    users, threads = world["users"], world["threads"]
    assert insights["communityId"] == world["community"]["id"]
    assert insights["communityName"] == world["community"]["name"]
    assert insights["period"] == {"since": format_utc(_at(17)), "until": format_utc(_at(24))}
    assert (insights["members"], insights["newMembers"]) == (3, 1)
    assert (insights["threads"], insights["comments"]) == (2, 2)
    assert insights["byDay"] == [
        {"day": f"2026-03-{day}", "threads": posts[0], "comments": posts[1]}
        for day, posts in {
            17: (0, 0),
            18: (0, 0),
            19: (0, 0),
            20: (1, 1),
            21: (0, 0),
            22: (0, 1),
            23: (1, 0),
        }.items()
    ]
    # All time, the week before the window included: Ann's thread and comment of March 16 count.
    assert insights["mostActive"] == [
        {"userId": users["ann"], "name": "Ann", "threads": 1, "comments": 2, "posts": 3},
        {"userId": users["bob"], "name": "Bob", "threads": 2, "comments": 0, "posts": 2},
        {"userId": users["cat"], "name": "Cat", "threads": 0, "comments": 1, "posts": 1},
    ]
    assert insights["waitingSince"] == format_utc(_at(22, 12))
    assert insights["waitingTotal"] == 1
    assert insights["waiting"] == [
        {
            "id": threads["old"],
            "title": "Old question",
            "authorId": users["ann"],
            "authorName": "Ann",
            "createdAt": format_utc(_at(16, 10)),
            "commentCount": 1,
        }
    ]


async def test_a_thread_exactly_hours_old_is_waiting_and_one_day_is_today_only(store, tenant):
    clock = Clock()
    async with mcp_client(store, tenant.key, clock=clock) as client:
        world = await _community(client, clock)
        insights = (await call(client, TOOL, communityId=world["community"]["id"], days=1, hours=12))[
            "insights"
        ]
    assert [thread["title"] for thread in insights["waiting"]] == ["Old question", "New"]
    assert insights["waitingTotal"] == 2
    assert insights["period"] == {"since": format_utc(_at(23)), "until": format_utc(_at(24))}
    assert insights["byDay"] == [{"day": "2026-03-23", "threads": 1, "comments": 0}]
    assert (insights["threads"], insights["comments"], insights["newMembers"]) == (1, 0, 0)
    assert [poster["name"] for poster in insights["mostActive"]] == ["Ann", "Bob", "Cat"]  # all time


async def test_an_empty_community_lists_every_day_with_zeros(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        insights = (await call(client, TOOL, communityId=community["id"], days=3))["insights"]
    assert [(day["threads"], day["comments"]) for day in insights["byDay"]] == [(0, 0)] * 3
    assert (insights["members"], insights["mostActive"], insights["waiting"]) == (0, [], [])


async def test_another_producers_community_is_not_found_and_bad_days_name_the_field(
    store, tenant, tenant_factory
):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        theirs = await new_community(client)
    async with mcp_client(store, tenant.key) as client:
        refused = await refuse(client, TOOL, communityId=theirs["id"])
        too_long = await refuse(client, TOOL, communityId=theirs["id"], days=91)
    assert refused["error"] == "not_found" and refused["message"].startswith("Community not found")
    assert too_long["error"] == "bad_request" and "days" in too_long["message"]


async def test_a_key_without_communities_read_does_not_see_it(store, tenant):
    key = await add_key(store, tenant, ["enrollments:read"])
    async with mcp_client(store, key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert TOOL not in names and "find_students_needing_attention" in names


async def test_rest_serves_it_under_the_community(store, tenant, app):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
    async with rest_client(app, tenant.key) as http:
        response = await http.get(f"/communities/{community['id']}/insights?days=2")
    assert response.status_code == 200, response.text
    assert len(response.json()["insights"]["byDay"]) == 2
