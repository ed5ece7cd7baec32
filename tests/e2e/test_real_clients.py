"""Clients this project did not write, driving real `blohko serve` processes over stdio and HTTP:
the official TypeScript SDK client (tests/node/sdk_client.mjs) and the MCP Inspector's CLI mode.
They catch what our own Python client would forgive."""

from __future__ import annotations

import json

import pytest

from server.prompts import PROMPTS
from tests.support.node_tools import NODE_MODULES, json_output
from tests.support.processes import (
    BLOHKO,
    cli_json,
    cli_producer_and_key,
    http_server,
    migrated_env,
)
from tools.registry import TOOLS

ALL_TOOLS = {op.name for op in TOOLS}
INSPECTOR_BUILD = NODE_MODULES / "@modelcontextprotocol" / "inspector-cli" / "build"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return migrated_env(tmp_path_factory.mktemp("clients"))


@pytest.fixture(scope="module")
def tenant(env):
    return cli_producer_and_key(env, "*")


@pytest.fixture(scope="module")
def server(env, tmp_path_factory):
    with http_server(env, tmp_path_factory.mktemp("logs") / "http.log") as running:
        yield running


def _stdio_env(env: dict[str, str], key: str) -> dict[str, str]:
    return {"BLOHKO_API_KEY": key, "BLOHKO_DATABASE_URL": env["BLOHKO_DATABASE_URL"]}


def _check_sdk_session(seen: dict, producer_id: str) -> None:
    assert seen["server"]["name"] == "blohko" and "whoami" in seen["instructions"]
    assert {tool["name"] for tool in seen["tools"]} == ALL_TOOLS
    assert not any(tool["hasOutputSchema"] for tool in seen["tools"])
    assert seen["whoami"]["producer"]["id"] == producer_id
    registered = seen["registered"]
    assert registered["isError"] is False and registered["structured"] == registered["text"]
    assert registered["structured"]["student"]["name"] == "Ada TypeScript"
    assert seen["missing"] == {
        "isError": True,
        "body": {"error": "not_found", "message": "Student not found"},
    }
    assert seen["invalid"]["isError"] and seen["invalid"]["body"]["error"] == "bad_request"
    assert "email" in seen["invalid"]["body"]["message"]
    assert "Unknown tool: no_such_tool" in seen["unknownTool"]["message"]
    _check_sdk_prompts(seen)


def _check_sdk_prompts(seen: dict) -> None:
    assert {"prompts", "completions"} <= set(seen["capabilities"])
    assert [prompt["name"] for prompt in seen["prompts"]] == [prompt.name for prompt in PROMPTS]
    launch = seen["launch"]
    assert f'{{"courseId": "{launch["courseId"]}"}}' in launch["text"] and "publish_course" in launch["text"]
    # This run's course, and every other Kiln Basics course the module's earlier run made.
    assert launch["courseId"] in seen["completed"]["values"]
    assert seen["completed"]["hasMore"] is False and seen["completed"]["total"] == len(
        seen["completed"]["values"]
    )
    assert seen["badPrompt"]["code"] == -32602
    assert "Invalid arguments for prompt launch_course: courseId is required" in seen["badPrompt"]["message"]


def test_typescript_sdk_client_over_stdio(node_tools, env, tenant):
    producer, key = tenant
    seen = json_output(
        node_tools.script("sdk_client.mjs", "stdio", BLOHKO, "serve", env=_stdio_env(env, key))
    )
    _check_sdk_session(seen, producer["id"])


def test_typescript_sdk_client_over_http(node_tools, tenant, server):
    producer, key = tenant
    seen = json_output(node_tools.script("sdk_client.mjs", "http", f"{server.url}/mcp", key))
    _check_sdk_session(seen, producer["id"])


def _inspector(node_tools, *args: str, env: dict[str, str] | None = None) -> dict:
    # inspector-cli 1.0.3 looks for its own package.json relative to the working directory
    # (fs.existsSync) but imports it relative to its module: run it from its build directory.
    done = node_tools.run(
        node_tools.node, INSPECTOR_BUILD / "cli.js", "--cli", *args, cwd=INSPECTOR_BUILD, env=env
    )
    return json_output(done)


def test_inspector_cli_lists_tools_and_calls_one_over_stdio(node_tools, env, tenant):
    _, key = tenant
    server_env = [arg for name, value in _stdio_env(env, key).items() for arg in ("-e", f"{name}={value}")]
    listed = _inspector(node_tools, *server_env, BLOHKO, "serve", "--method", "tools/list")
    called = _inspector(
        node_tools,
        *server_env,
        BLOHKO,
        "serve",
        "--method",
        "tools/call",
        "--tool-name",
        "parse_video",
        "--tool-arg",
        "url=https://youtu.be/dQw4w9WgXcQ",
    )
    assert {tool["name"] for tool in listed["tools"]} == ALL_TOOLS
    assert called["isError"] is False
    assert called["structuredContent"]["video"]["embedUrl"] == "https://www.youtube.com/embed/dQw4w9WgXcQ"
    assert json.loads(called["content"][0]["text"]) == called["structuredContent"]


def test_inspector_cli_over_http_sees_only_what_the_key_allows(node_tools, env, tenant, server):
    producer, _ = tenant
    key = cli_json(
        env, "keys", "create", "--producer", producer["id"], "--name", "ro", "--permissions", "students:read"
    )
    url, bearer = f"{server.url}/mcp", f"Authorization: Bearer {key['key']}"
    listed = _inspector(node_tools, url, "--transport", "http", "--header", bearer, "--method", "tools/list")
    called = _inspector(
        node_tools,
        url,
        "--transport",
        "http",
        "--header",
        bearer,
        "--method",
        "tools/call",
        "--tool-name",
        "list_students",
        "--tool-arg",
        "limit=5",
    )
    assert {tool["name"] for tool in listed["tools"]} == {
        "whoami",
        "parse_video",
        "list_students",
        "get_student",
        "export_student",
        "get_school_report",  # its students part
    }
    assert called["isError"] is False and called["structuredContent"]["pagination"]["limit"] == 5


def test_inspector_cli_lists_only_the_prompts_a_key_may_use_over_stdio(node_tools, env, tenant):
    # prompts/list as a stdio server's first request: answered before its store is loaded.
    producer, _ = tenant
    naming = ("--producer", producer["id"], "--name", "community")
    key = cli_json(env, "keys", "create", *naming, "--permissions", "communities:read")
    server_env = [
        arg for name, value in _stdio_env(env, key["key"]).items() for arg in ("-e", f"{name}={value}")
    ]
    listed = _inspector(node_tools, *server_env, BLOHKO, "serve", "--method", "prompts/list")
    assert [prompt["name"] for prompt in listed["prompts"]] == ["weekly_community_digest"]
