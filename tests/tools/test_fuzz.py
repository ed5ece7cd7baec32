"""Fuzzing every tool from its own input schema, valid and corrupted: never an internal_error,
never a crash, and a rejected call leaves the store exactly as it was.

Besides the random examples, every date-time argument meets the calendar's edges, every cursor
argument meets cursors carrying extreme integers (beyond 64 bits included), and every argument
position (over MCP, and every REST body, query and path) meets a value nested a thousand levels deep.

Examples per tool: `BLOHKO_FUZZ_EXAMPLES` (default 12). A longer run:
    BLOHKO_FUZZ_EXAMPLES=500 uv run pytest tests/tools/test_fuzz.py
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import quote

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR

from server.rest import Endpoint, catalog_endpoints
from storage.engine import Store, open_store
from tests.support.databases import ENGINE, empty_tables, sqlite_path
from tests.support.factories import make_tenant, mcp_client, store_digest, text_of
from tests.support.properties import ALL_HEALTH_CHECKS
from tests.support.rest import bearer, example_arguments, rest_call, rest_client, seed
from tools.core.catalog import Operation
from tools.domains.event_feed import CURSOR_PATTERN, MAX_CURSOR_DIGITS, encode_cursor
from tools.registry import TOOLS

EXAMPLES = int(os.environ.get("BLOHKO_FUZZ_EXAMPLES", "12"))

HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "\ud800",
    "é" * 3,
    "🎓" * 50,
    "\u202eevil",
    "x" * 100_000,
    "' OR 1=1 --",
    "'; DROP TABLE users; --",
    "{{7*7}}",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%s%s%n",
]
HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-1, 0, 2**31, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=50),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just([[[[[[[[[[[]]]]]]]]]]]),
)

# The first and last days of the calendar with the extreme real offsets (UTC-14:00 to UTC+14:00):
# some of them leave the range a datetime can hold once converted to UTC.
OUTSIDE_THE_CALENDAR_IN_UTC = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:00:00-14:00",
    "9999-12-31T23:59:59.999999-00:01",
]
INSIDE_THE_CALENDAR_IN_UTC = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59+14:00",
]
MALFORMED_DATETIMES = [
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:01Z",
    "2026-01-01T00:00:60Z",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00-99:99",
    "2026-01-01T00:00:00",
    "2026-01-01",
    "2026-01-01T00:00:00Z junk",
]
DATETIME_EDGES = OUTSIDE_THE_CALENDAR_IN_UTC + INSIDE_THE_CALENDAR_IN_UTC + MALFORMED_DATETIMES


# Cursors (`seq:N` in base64url) carrying the integers that break a 64-bit column, the edges of
# what a cursor may carry, and near misses: unpadded or not, other prefixes, other digits.
EXTREME_SEQUENCES = [
    -(2**63),
    -1,
    0,
    1,
    10**MAX_CURSOR_DIGITS - 1,
    10**MAX_CURSOR_DIGITS,
    2**63 - 1,
    2**63,
    2**64,
    10**30,
    10**4000,
]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


CURSOR_EDGES = [
    *(encode_cursor(sequence) for sequence in EXTREME_SEQUENCES),
    _b64("seq:1"),  # padded
    _b64("seq:" + "0" * 40 + "1"),  # a small number in many digits
    _b64("seq:\u0663"),  # a digit that is not ASCII
    _b64("seq:+1"),
    _b64("seq: 1"),
    _b64("seq:1_000"),
    _b64("seq:"),
    _b64("sequence:1"),
    "seq:1",
    "c2VxOjE",  # seq:1 with its unused bits set: the same bytes, not the text the feed writes
    "c2VxOjF",
]
CURSORS = st.one_of(
    st.sampled_from(CURSOR_EDGES),
    st.integers(min_value=-(2**80), max_value=2**80).map(encode_cursor),
    st.from_regex(CURSOR_PATTERN, fullmatch=True),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=40).map(
        lambda tail: "c2VxOj" + tail
    ),
)


def _cursor_fields(schema: dict) -> list[str]:
    """The arguments that take a feed cursor."""
    return [name for name in schema.get("properties", {}) if name == "cursor"]


def _with_cursors(valid: st.SearchStrategy[dict], fields: list[str]) -> st.SearchStrategy[dict]:
    """Valid arguments with their cursor `fields` set to cursors at the edges or beyond them."""

    @st.composite
    def cursors(draw) -> dict:
        arguments = dict(draw(valid))
        for name in fields:
            arguments[name] = draw(CURSORS)
        return arguments

    return cursors()


def _datetime_fields(schema: dict) -> list[str]:
    """The arguments whose schema (or one of its `anyOf` options) is a date-time string."""
    return [
        name
        for name, prop in schema.get("properties", {}).items()
        if any(option.get("format") == "date-time" for option in [prop, *prop.get("anyOf", [])])
    ]


def _at_calendar_edges(valid: st.SearchStrategy[dict], fields: list[str]) -> st.SearchStrategy[dict]:
    """Valid arguments with some of their date-time `fields` set to calendar edges or near misses."""

    @st.composite
    def edges(draw) -> dict:
        arguments = dict(draw(valid))
        for name in draw(st.lists(st.sampled_from(fields), min_size=1, unique=True)):
            arguments[name] = draw(st.sampled_from(DATETIME_EDGES))
        return arguments

    return edges()


def _corrupted(valid: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    """Valid arguments with one field replaced by a hostile value, or one unknown field added."""

    @st.composite
    def corrupt(draw) -> dict:
        arguments = dict(draw(valid))
        key = draw(st.sampled_from(sorted(arguments) + ["unexpectedField"]))
        arguments[key] = draw(HOSTILE_VALUES)
        return arguments

    return corrupt()


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal("asyncio") as running:
        yield running


@pytest.fixture
def fuzz_database(portal, migrated_template, databases, tmp_path) -> str:
    """A migrated, empty database (the async `database_url` fixture cannot serve a sync test)."""
    if ENGINE == "sqlite":
        path = tmp_path / "fuzz.db"
        shutil.copy(sqlite_path(migrated_template), path)
        return f"sqlite:///{path}"
    portal.call(empty_tables, migrated_template)
    return migrated_template


@pytest.mark.parametrize("op", TOOLS, ids=lambda op: op.name)
def test_fuzzed_arguments_never_crash_and_rejections_change_nothing(op, portal, fuzz_database):
    # Hypothesis drives sync tests; the store and client live on the portal's event loop.
    with portal.wrap_async_context_manager(open_store(fuzz_database)) as store:
        tenant = portal.call(lambda: make_tenant(store, name="Fuzz Academy", permissions=["*"]))
        with portal.wrap_async_context_manager(mcp_client(store, tenant.key)) as client:
            _run_examples(op, portal, store, client)


def _run_examples(op, portal: BlockingPortal, store: Store, client) -> None:
    # it canonicalises schemas in place; an input schema is an object's, so its values are dicts
    valid = cast("st.SearchStrategy[dict]", from_schema(copy.deepcopy(op.input_schema)))
    dated, cursored = _datetime_fields(op.input_schema), _cursor_fields(op.input_schema)
    strategies = [valid, _corrupted(valid)] + ([_at_calendar_edges(valid, dated)] if dated else [])
    strategies += [_with_cursors(valid, cursored)] if cursored else []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=ALL_HEALTH_CHECKS,
    )
    @given(arguments=st.one_of(strategies))
    def check(arguments: dict) -> None:
        before = portal.call(store_digest, store)
        try:
            result = portal.call(client.call_tool, op.name, arguments)
        except MCPError as refused:  # a protocol-level refusal is fine; a crash is not
            assert "internal" not in refused.error.message.lower(), refused.error.message
            assert portal.call(store_digest, store) == before
            return
        if result.is_error:
            body = json.loads(text_of(result))
            assert body["error"] != "internal_error", f"{op.name}({arguments!r}) -> {body}"
            assert set(body) == {"error", "message"} and body["message"]
            assert portal.call(store_digest, store) == before, f"rejected {op.name} changed the store"

    check()


# ---- calendar edges, every date-time argument

DATED = [(op, name) for op in TOOLS for name in _datetime_fields(op.input_schema)]


async def _mcp_answer(client, op: Operation, arguments: dict[str, Any]) -> dict[str, Any]:
    """The `{error, message}` body of a refused call, `{}` for a success."""
    result = await client.call_tool(op.name, arguments)
    return json.loads(text_of(result)) if result.is_error else {}


async def _rest_answer(http: httpx.AsyncClient, op: Operation, arguments: dict[str, Any]) -> dict[str, Any]:
    response = await rest_call(http, op, arguments)
    return response.json() if response.status_code >= 400 else {}


@pytest.mark.parametrize(("op", "field"), DATED, ids=[f"{op.name}.{field}" for op, field in DATED])
async def test_every_date_time_argument_at_the_calendar_edges_answers_ok_or_bad_request_naming_it(
    store, tenant, app, op, field
):
    seeded = await seed(store, tenant)
    arguments = example_arguments(op, seeded.ids)
    answers = {}
    async with mcp_client(store, tenant.key) as client, rest_client(app, tenant.key) as http:
        for value in DATETIME_EDGES:
            trial = {**arguments, field: value}
            answers[value] = (await _mcp_answer(client, op, trial), await _rest_answer(http, op, trial))
    for value, over_mcp_and_rest in answers.items():
        for body in over_mcp_and_rest:
            if (
                value in INSIDE_THE_CALENDAR_IN_UTC or value in OUTSIDE_THE_CALENDAR_IN_UTC
            ):  # the latter clamped
                assert body == {}, (value, body)
                continue
            assert body.get("error") == "bad_request" and f"{field}: " in body["message"], (value, body)


# ---- cursors at the edges, every cursor argument

CURSORED = [(op, name) for op in TOOLS for name in _cursor_fields(op.input_schema)]


@pytest.mark.parametrize(("op", "field"), CURSORED, ids=[f"{op.name}.{field}" for op, field in CURSORED])
async def test_every_cursor_argument_at_the_edges_answers_ok_where_the_schema_admits_it_else_bad_request_naming_it(
    store, tenant, app, op, field
):
    seeded = await seed(store, tenant)
    arguments = example_arguments(op, seeded.ids)
    answers = {}
    async with mcp_client(store, tenant.key) as client, rest_client(app, tenant.key) as http:
        for value in CURSOR_EDGES:
            trial = {**arguments, field: value}
            answers[value] = (await _mcp_answer(client, op, trial), await _rest_answer(http, op, trial))
    for value, over_mcp_and_rest in answers.items():
        for body in over_mcp_and_rest:
            if re.fullmatch(CURSOR_PATTERN, value):  # the OpenAPI document admits it: answered
                assert body == {}, (value, body)
            else:
                assert body.get("error") == "bad_request" and body["message"].startswith(
                    f"Invalid input: {field}: "
                ), (value, body)


# ---- nesting a thousand levels deep, every argument position

DEPTH = 1_000
# The SDK's client serializes a request with pydantic, which stops at 255 levels (`ValueError`
# before anything is sent); over streamable HTTP and stdio the SDK's JSON parser stops at 200.
CLIENT_DEPTH = 250


def _nested(depth: int) -> Any:
    """`{"a": [{"a": [... [null]]}]}`: objects and lists alternating, `depth` (even) levels deep."""
    value: Any = None
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def _nested_json(depth: int) -> str:
    """`_nested(depth)` as JSON text, written without a recursive encoder."""
    return '{"a":[' * (depth // 2) + "null" + "]}" * (depth // 2)


def _positions(op: Operation) -> list[str]:
    return [*op.input_schema.get("properties", {}), "unexpectedField"]


def _no_internal_error(body: dict[str, Any], where: str) -> None:
    assert body.get("error") != "internal_error", f"{where} -> {body}"


async def test_a_deeply_nested_value_in_any_tool_argument_is_no_internal_error_in_process(store, tenant):
    nested = _nested(CLIENT_DEPTH)
    async with mcp_client(store, tenant.key) as client:
        for op in TOOLS:
            for position in _positions(op):
                try:
                    body = await _mcp_answer(client, op, {position: nested})
                except MCPError as refused:
                    assert refused.error.code != INTERNAL_ERROR, (
                        f"{op.name}.{position}: {refused.error.message}"
                    )
                    continue
                _no_internal_error(body, f"{op.name}.{position}")


async def test_a_deeply_nested_value_in_any_tool_argument_is_no_internal_error_over_streamable_http(
    app, tenant
):
    nested = _nested_json(DEPTH)
    headers = {
        **bearer(tenant.key),
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    async with app.router.lifespan_context(app), rest_client(app, base_url="http://127.0.0.1") as http:
        for op in TOOLS:
            for position in _positions(op):
                # Spliced as text: `nested` is deeper than json.dumps can recurse.
                arguments = "{" + json.dumps(position) + ":" + nested + "}"
                call = '{"name":' + json.dumps(op.name) + ',"arguments":' + arguments + "}"
                message = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + call + "}"
                response = await http.post("/mcp", content=message, headers=headers)
                answer = response.json()
                assert response.status_code < 500 and answer.get("error", {}).get("code") != INTERNAL_ERROR, (
                    answer
                )
                if answer.get("result", {}).get("isError"):
                    _no_internal_error(
                        json.loads(answer["result"]["content"][0]["text"]), f"{op.name}.{position}"
                    )


async def _rest_with_nested(
    http: httpx.AsyncClient, endpoint: Endpoint, position: str | None, headers: dict
) -> httpx.Response:
    """`endpoint` with `position` (a field, or None for the whole body) holding `_nested_json(DEPTH)`."""
    nested = _nested_json(DEPTH)
    path = endpoint.path
    for name in endpoint.path_params:
        path = path.replace("{" + name + "}", quote(nested if name == position else "x", safe=""))
    in_path = position in endpoint.path_params
    if not endpoint.takes_body:
        assert position is not None, "only a body is a whole-value position"
        return await http.request(
            endpoint.method, path, params={} if in_path else {position: nested}, headers=headers
        )
    content = (
        "{}" if in_path else nested if position is None else "{" + json.dumps(position) + ":" + nested + "}"
    )
    return await http.request(
        endpoint.method, path, content=content, headers={**headers, "Content-Type": "application/json"}
    )


async def test_a_deeply_nested_value_in_any_rest_body_query_or_path_position_is_no_internal_error(
    app, tenant
):
    async with rest_client(app) as http:
        login = await http.post(
            "/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password}
        )
        credentials = {
            "api_key": bearer(tenant.key),
            "session": bearer(login.json()["session"]["token"]),
            "none": {},
        }
        for endpoint in catalog_endpoints():
            fields = [field.alias or name for name, field in endpoint.input_model.model_fields.items()]
            positions = [*fields, "unexpectedField"] + ([None] if endpoint.takes_body else [])
            for position in positions:
                response = await _rest_with_nested(http, endpoint, position, credentials[endpoint.auth])
                where = f"{endpoint.method} {endpoint.path} {position}"
                assert response.status_code < 500, f"{where} -> {response.status_code} {response.text}"
                _no_internal_error(response.json(), where)
                if endpoint.takes_body and position not in endpoint.path_params:
                    assert (
                        response.status_code == 400 and "nested too deeply" in response.json()["message"]
                    ), where
