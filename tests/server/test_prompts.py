"""MCP prompts and the completion of their ids (`server.prompts`): a key lists, gets and completes
exactly the prompts whose tools it may call; arguments are checked with errors that name the
problem; completion offers the caller's own ids only."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, PromptReference, TextContent

import server.prompts
from server.prompts import MAX_COMPLETIONS, PROMPTS, BlohkoPrompt, Rendering
from server.published_tools import published_tools
from storage.ids import utcnow
from tests.support.factories import (
    add_key,
    make_course,
    make_lesson,
    make_section,
    mcp_client,
    ok,
    statements,
)
from tests.support.rest import bearer, rest_client
from tools.core.permissions import Permission, requirement_json
from tools.core.runner import run_operation
from tools.registry import OPERATIONS_BY_NAME

TOOLS = {tool.name: tool for tool in published_tools()}


def _needs(prompt: BlohkoPrompt) -> set[str]:
    """The permissions a prompt's tools require, read from the published list (not `may_call`)."""
    needed: set[str] = set()
    for name in prompt.tools:
        wire = requirement_json(TOOLS[name].permission)
        if wire is None:
            continue
        if isinstance(wire, dict):
            assert "allOf" in wire, f"{name}: a prompt's tool must not need any-of permissions"
            needed |= set(wire["allOf"])
        else:
            needed.add(str(wire))
    return needed


# Every prompt's own permissions, and every single permission: a new prompt brings its own case.
GRANT_SETS = sorted(
    {tuple(sorted(_needs(prompt))) for prompt in PROMPTS} | {(str(permission),) for permission in Permission}
)


def _text(result: Any) -> str:
    content = result.messages[0].content
    assert isinstance(content, TextContent)
    return content.text


async def _make_community(client: Client, name: str) -> dict[str, Any]:
    arguments = {"name": name, "slug": f"community-{secrets.token_hex(4)}"}
    return ok(await client.call_tool("create_community", arguments))["community"]


async def _complete(client: Client, prompt: str, argument: str, value: str) -> Any:
    completed = await client.complete(PromptReference(name=prompt), {"name": argument, "value": value})
    return completed.completion


def test_every_prompt_declares_published_tools_and_arguments_it_can_complete():
    assert len({prompt.name for prompt in PROMPTS}) == len(PROMPTS)
    for prompt in PROMPTS:
        assert prompt.tools and set(prompt.tools) <= set(TOOLS), prompt.name
        for argument in prompt.arguments:
            assert argument.completes in (None, "list_courses", "list_communities"), argument


@pytest.mark.parametrize("grants", GRANT_SETS, ids="+".join)
async def test_a_key_lists_and_gets_exactly_the_prompts_whose_tools_it_may_call(store, tenant, grants):
    key = await add_key(store, tenant, list(grants))
    usable = [prompt.name for prompt in PROMPTS if _needs(prompt) <= set(grants)]
    async with mcp_client(store, key) as client:
        listed = (await client.list_prompts()).prompts
        assert [prompt.name for prompt in listed] == usable
        for prompt in PROMPTS:
            if prompt.name in usable:
                continue
            with pytest.raises(MCPError) as refused:
                await client.get_prompt(prompt.name, {"courseId": "course_x", "communityId": "comm_x"})
            assert (refused.value.error.code, refused.value.error.message) == (
                INVALID_PARAMS,
                f"Unknown prompt: {prompt.name}",
            )
            for argument in prompt.arguments:
                assert (await _complete(client, prompt.name, argument.name, "")).values == []


async def test_a_listed_prompt_names_its_tools_and_arguments(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        listed = {prompt.name: prompt for prompt in (await client.list_prompts()).prompts}
    launch = listed["launch_course"]
    assert launch.title == "Launch a course"
    assert launch.description is not None and "publish_course" in launch.description
    assert [(a.name, a.required) for a in launch.arguments or []] == [("courseId", True)]
    digest = listed["weekly_community_digest"]
    assert [(a.name, a.required) for a in digest.arguments or []] == [("communityId", True), ("days", False)]


async def test_the_digest_tells_which_tools_to_call_for_the_community_and_window(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await _make_community(client, "Potters' Corner")
        text = _text(
            await client.get_prompt("weekly_community_digest", {"communityId": community["id"], "days": "3"})
        )
    since = (utcnow().date() - timedelta(days=2)).isoformat()
    assert f'"Potters\' Corner" ({community["id"]})' in text
    assert f'get_community_insights with {{"communityId": "{community["id"]}", "days": 3}}' in text
    assert f'list_threads with {{"communityId": "{community["id"]}", "since": "{since}T00:00:00Z"' in text
    assert "do not post it" in text


async def test_welcome_new_members_posts_as_the_owner_only_when_approved(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await _make_community(client, "Glaze Lab")
        text = _text(await client.get_prompt("welcome_new_members", {"communityId": community["id"]}))
    assert "in the last 7 days" in text and "whoami" in text
    assert "Only when the owner approves it, call create_thread" in text
    assert f'"idempotencyKey": "welcome-{community["id"]}-{utcnow():%Y-%m-%d}"' in text


async def test_launch_course_lists_the_gaps_found_in_the_curriculum(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, title="Wheel Throwing", shortDescription="Centre the clay.")
        section = await make_section(client, course["id"], "Basics")
        await make_lesson(client, section, "Wedging", duration=300, videoUrl="https://youtu.be/dQw4w9WgXcQ")
        await make_lesson(client, section, "Centring")
        await make_section(client, course["id"], "Trimming")
        text = _text(await client.get_prompt("launch_course", {"courseId": course["id"]}))
    assert f'"Wheel Throwing" ({course["id"]}) from curriculum to launch. It is a draft' in text
    gaps = text.split("Gaps found just now:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert gaps == [
        "- no description",
        "- no thumbnail",
        "- no level",
        "- 1 section(s) without lessons: Trimming",
        "- 1 lesson(s) without a video: Centring",
        "- 1 lesson(s) without a duration: Centring",
        "- no free preview lesson",
    ]
    assert f'publish_course with {{"courseId": "{course["id"]}"}}' in text


async def test_reengage_counts_the_stalled_learners_of_the_course(store, tenant):
    month_ago = utcnow() - timedelta(days=30)
    async with mcp_client(store, tenant.key, clock=lambda: month_ago) as past:
        course = await make_course(past, title="Raku Firing")
        await make_lesson(past, await make_section(past, course["id"], "One"), "First")
        for n in range(2):
            arguments = {"name": f"Learner {n}", "email": f"learner{n}-{secrets.token_hex(3)}@example.com"}
            student = ok(await past.call_tool("register_student", arguments))["student"]
            ok(await past.call_tool("enroll_student", {"studentId": student["id"], "courseId": course["id"]}))
    async with mcp_client(store, tenant.key) as client:
        text = _text(
            await client.get_prompt("reengage_learners", {"courseId": course["id"], "inactiveDays": "21"})
        )
        everywhere = _text(await client.get_prompt("reengage_learners", {}))
    assert "no progress for 21 days or more: 2 enrollment(s) right now" in text
    expected = f'find_students_needing_attention with {{"inactiveDays": 21, "limit": 20, "courseId": "{course["id"]}"}}'
    assert expected in text
    assert "of every course" in everywhere and '{"inactiveDays": 14, "limit": 20}' in everywhere


async def test_every_prompt_names_exactly_its_declared_tools(store, tenant):
    """The text names only declared tools, and every declared tool is named or read to render it."""
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, title="Slip Casting")
        community = await _make_community(client, "Kiln Room")
    principal_key = tenant.key

    from tools.domains.accounts import authenticate_api_key

    principal = await authenticate_api_key(store, principal_key, clock=utcnow)

    async def run_as(principal, name, arguments):
        return await run_operation(OPERATIONS_BY_NAME[name], arguments, store=store, principal=principal)

    ids = {"courseId": course["id"], "communityId": community["id"]}
    for prompt in PROMPTS:
        arguments = prompt.parse({a.name: ids[a.name] for a in prompt.arguments if a.name in ids})
        rendering = Rendering(arguments, utcnow(), principal, run_as)
        text = await prompt.render(rendering)
        named = {name for name in TOOLS if re.search(rf"\b{name}\b", text)}
        assert named <= set(prompt.tools), (prompt.name, named - set(prompt.tools))
        assert named | set(rendering.reads) == set(prompt.tools), prompt.name


@pytest.mark.parametrize(
    ("prompt", "arguments", "message"),
    [
        ("launch_course", {}, "Invalid arguments for prompt launch_course: courseId is required"),
        (
            "launch_course",
            {"courseId": "  "},
            "Invalid arguments for prompt launch_course: courseId is required",
        ),
        (
            "weekly_community_digest",
            {"communityId": "comm_x", "days": "week", "topic": "x"},
            (
                "Invalid arguments for prompt weekly_community_digest: unknown argument 'topic'; "
                "days must be a whole number from 1 to 90, not 'week'"
            ),
        ),
        (
            "reengage_learners",
            {"inactiveDays": "0"},
            "Invalid arguments for prompt reengage_learners: inactiveDays must be a whole number from 1 to 3650, not '0'",
        ),
        ("launch_course", {"courseId": "c" * 101}, "courseId must be an id of at most 100 characters"),
        ("launch_course", {"courseId": "course_missing"}, "courseId 'course_missing': Course not found"),
        (
            "welcome_new_members",
            {"communityId": "comm_missing"},
            "communityId 'comm_missing': Community not found",
        ),
        ("reengage_learners", {"courseId": "course_missing"}, "courseId 'course_missing': Course not found"),
    ],
)
async def test_bad_arguments_are_invalid_params_naming_the_problem(store, tenant, prompt, arguments, message):
    async with mcp_client(store, tenant.key) as client:
        with pytest.raises(MCPError) as refused:
            await client.get_prompt(prompt, arguments)
    assert refused.value.error.code == INVALID_PARAMS
    assert message in refused.value.error.message


async def test_another_producers_id_is_not_found_like_a_missing_one(store, tenant, tenant_factory):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        theirs = await make_course(client, title="Their Course")
    async with mcp_client(store, tenant.key) as client:
        with pytest.raises(MCPError) as refused:
            await client.get_prompt("launch_course", {"courseId": theirs["id"]})
    assert refused.value.error.message == f"courseId '{theirs['id']}': Course not found"


async def test_completion_offers_only_the_callers_own_ids_matching_the_typed_text(
    store, tenant, tenant_factory
):
    other = await tenant_factory("Other School")
    async with mcp_client(store, other.key) as client:
        await make_course(client, title="Pottery Elsewhere")
        await _make_community(client, "Potters Elsewhere")
    async with mcp_client(store, tenant.key) as client:
        pottery = await make_course(client, title="Pottery Basics")
        glazing = await make_course(client, title="Advanced glazing")
        potters = await _make_community(client, "Potters' Corner")
        by_word = await _complete(client, "launch_course", "courseId", "pot")
        second_word = await _complete(client, "launch_course", "courseId", "GLAZ")
        by_id = await _complete(client, "launch_course", "courseId", glazing["id"][:12])
        every = await _complete(client, "reengage_learners", "courseId", "")
        communities = await _complete(client, "weekly_community_digest", "communityId", "pot")
        nothing = await _complete(client, "launch_course", "courseId", "zebra")
        not_an_id = await _complete(client, "weekly_community_digest", "days", "7")
    assert (by_word.values, by_word.total, by_word.has_more) == ([pottery["id"]], 1, False)
    assert second_word.values == [glazing["id"]]
    assert glazing["id"] in by_id.values and set(by_id.values) <= {pottery["id"], glazing["id"]}
    assert sorted(every.values) == sorted([pottery["id"], glazing["id"]]) and every.total == 2
    assert communities.values == [potters["id"]]
    assert (nothing.values, nothing.total, nothing.has_more) == ([], 0, False)
    assert not_an_id.values == []


async def test_completion_is_bounded_to_100_values_and_says_there_are_more(store, tenant, monkeypatch):
    async with mcp_client(store, tenant.key) as client:
        for n in range(MAX_COMPLETIONS + 2):
            await make_course(client, title=f"Clay {n}")
        completed = await _complete(client, "launch_course", "courseId", "clay")
        untyped = await _complete(client, "launch_course", "courseId", "")
        by_id = await _complete(client, "launch_course", "courseId", "course_")
        # With fewer values to send than a page holds, one page's matches are already too many:
        # it stops there, without counting them all.
        monkeypatch.setattr(server.prompts, "MAX_COMPLETIONS", 50)
        with statements(store) as seen:
            stopped = await _complete(client, "launch_course", "courseId", "course_")
    assert len(completed.values) == MAX_COMPLETIONS
    assert (completed.total, completed.has_more) == (MAX_COMPLETIONS + 2, True)
    assert (len(untyped.values), untyped.total, untyped.has_more) == (
        MAX_COMPLETIONS,
        MAX_COMPLETIONS + 2,
        True,
    )
    assert (len(by_id.values), by_id.total, by_id.has_more) == (MAX_COMPLETIONS, MAX_COMPLETIONS + 2, True)
    assert (len(stopped.values), stopped.total, stopped.has_more) == (50, None, True)
    assert sum("offset" in sql.lower() and "courses" in sql for sql in seen) == 1  # one page read


async def test_a_key_without_courses_read_completes_no_course_ids(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, title="Pottery Basics")
    attention_only = await add_key(store, tenant, ["enrollments:read"])
    both = await add_key(store, tenant, ["enrollments:read", "courses:read"])
    async with mcp_client(store, attention_only) as client:
        assert [p.name for p in (await client.list_prompts()).prompts] == ["reengage_learners"]
        refused = await _complete(client, "reengage_learners", "courseId", "")
    async with mcp_client(store, both) as client:
        allowed = await _complete(client, "reengage_learners", "courseId", "")
    assert refused.values == []
    assert allowed.values == [course["id"]]


async def test_an_unknown_prompt_completes_to_nothing(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        completed = await _complete(client, "test_prompt_with_arguments", "arg1", "test")
    assert completed.values == []


async def test_a_key_revoked_mid_session_gets_no_prompt_and_no_completion(store, tenant):
    from tools.domains.accounts import revoke_api_key

    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, title="Pottery Basics")
        assert len((await client.list_prompts()).prompts) == len(PROMPTS)
        async with store.writing() as db:
            await revoke_api_key(db, producer_id=tenant.producer_id, key_id=tenant.key_id, clock=utcnow)
        with pytest.raises(MCPError, match="revoked"):
            await client.list_prompts()
        with pytest.raises(MCPError, match="revoked"):
            await client.get_prompt("launch_course", {"courseId": course["id"]})
        with pytest.raises(MCPError, match="revoked"):
            await _complete(client, "launch_course", "courseId", "")


async def test_the_capabilities_declare_prompts_and_completions(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        capabilities = client.server_capabilities
    assert (
        capabilities is not None and capabilities.prompts is not None and capabilities.completions is not None
    )


async def _rpc(http: Any, key: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    headers = {**bearer(key), "Accept": "application/json, text/event-stream"}
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return (await http.post("/mcp", json=request, headers=headers)).json()


async def test_over_streamable_http_each_request_is_answered_for_its_own_key(app, store, tenant):
    async with mcp_client(store, tenant.key) as client:
        course = await make_course(client, title="Pottery Basics")
    community_only = await add_key(store, tenant, ["communities:read"])
    async with app.router.lifespan_context(app), rest_client(app, base_url="http://127.0.0.1") as http:
        full = await _rpc(http, tenant.key, "prompts/list", {})
        narrow = await _rpc(http, community_only, "prompts/list", {})
        refused = await _rpc(http, community_only, "prompts/get", {"name": "launch_course"})
        not_an_object = await _rpc(
            http, tenant.key, "prompts/get", {"name": "launch_course", "arguments": ["x"]}
        )
        launch = await _rpc(
            http,
            tenant.key,
            "prompts/get",
            {"name": "launch_course", "arguments": {"courseId": course["id"]}},
        )
        ref = {"type": "ref/prompt", "name": "launch_course"}
        completed = await _rpc(
            http,
            tenant.key,
            "completion/complete",
            {"ref": ref, "argument": {"name": "courseId", "value": "pot"}},
        )
    assert [p["name"] for p in full["result"]["prompts"]] == [p.name for p in PROMPTS]
    assert [p["name"] for p in narrow["result"]["prompts"]] == ["weekly_community_digest"]
    assert refused["error"] == {"code": INVALID_PARAMS, "message": "Unknown prompt: launch_course"}
    assert not_an_object["error"] == {
        "code": INVALID_PARAMS,
        "message": "Invalid arguments for prompt launch_course: not an object",
    }
    assert "Pottery Basics" in launch["result"]["messages"][0]["content"]["text"]
    assert completed["result"]["completion"]["values"] == [course["id"]]
