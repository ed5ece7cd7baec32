"""REST and MCP are two transports of one catalog: for every operation, the same arguments give the same data.

Reads run over both transports on the same data and must answer identical JSON. Writes run
over each transport on its own copy of the data and must answer the same JSON but for the
values that are new each time (ids, timestamps, slugs, emails).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.factories import apart_from_exports, error, mcp_client, ok
from tests.support.rest import example_arguments, rest_call, rest_client, seed
from tools.core.catalog import Operation
from tools.registry import TOOLS

EXCLUDED: dict[str, str] = {}
"""Operations this test leaves out, each with the reason. None so far."""

_NOW_MINUS = {"silentSince", "waitingSince", "exportedAt"}
"""Answer fields that are the call's clock (minus a window the caller gave): the two calls of a read
run a few milliseconds apart, so these are compared as types."""
_VOLATILE = {"slug", "email", "generatedPassword", "secret", "courseSlug"}  # a secret is new on every create
_NEW_ID = re.compile(r"[a-z]+_[0-9a-f]{20}")  # storage.ids.new_id


def _normalized(value: Any, key: str = "") -> Any:
    """`value` with what differs between two otherwise equal writes replaced by its type."""
    if isinstance(value, dict):
        return {k: _normalized(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(item) for item in value]
    new_id = isinstance(value, str) and _NEW_ID.fullmatch(value)
    if new_id or (value is not None and (key in _VOLATILE or key.endswith("At"))):
        return f"<{type(value).__name__}>"
    return value


_STATES_ITS_MOMENT = {"get_course_insights", "get_school_report"}
"""Reads whose answer states when it was asked (`asOf`, the windows and default period ending
then): the two transports ask a moment apart, so those times are compared by type."""


def _moment_free(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _moment_free(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_moment_free(item) for item in value]
    return f"<{type(value).__name__}>" if key in ("asOf", "since", "until") else value


def _without_the_clock(value: Any) -> Any:
    """`value` with `_NOW_MINUS` fields, wherever they are, replaced by their type."""
    if isinstance(value, dict):
        return {
            k: f"<{type(v).__name__}>" if k in _NOW_MINUS else _without_the_clock(v) for k, v in value.items()
        }
    return value


async def _over_both(client, http, op: Operation, arguments: dict[str, Any]) -> tuple[dict, dict, int]:
    over_mcp = await client.call_tool(op.name, arguments)
    over_rest = await rest_call(http, op, arguments)
    return (error(over_mcp) if over_mcp.is_error else ok(over_mcp)), over_rest.json(), over_rest.status_code


async def test_every_operation_answers_the_same_data_over_rest_and_mcp(store, tenant, app):
    covered: set[str] = set()
    reads = [op for op in TOOLS if op.read_only and op.name not in EXCLUDED]
    writes = [op for op in TOOLS if not op.read_only and op.name not in EXCLUDED]
    shared = await seed(store, tenant)
    per_transport = [await seed(store, tenant), await seed(store, tenant)]
    async with mcp_client(store, tenant.key) as client, rest_client(app, tenant.key) as http:
        for op in reads:
            over_mcp, over_rest, status = await _over_both(
                client, http, op, example_arguments(op, shared.ids)
            )
            assert status == op.http_status, (op.name, over_rest)
            if op.name in _STATES_ITS_MOMENT:
                over_mcp, over_rest = _moment_free(over_mcp), _moment_free(over_rest)
            if op.name == "export_student":  # each export is audited: REST's answer holds MCP's record
                over_mcp, over_rest = apart_from_exports(over_mcp)[0], apart_from_exports(over_rest)[0]
            assert _without_the_clock(over_mcp) == _without_the_clock(over_rest), op.name
            covered.add(op.name)

        for op in writes:
            # A destructive write gets fresh data on each side; the others share one copy per side.
            mcp_ids, rest_ids = (
                [(await seed(store, tenant)).ids for _ in range(2)]
                if op.destructive
                else [copy.ids for copy in per_transport]
            )
            over_mcp = ok(await client.call_tool(op.name, example_arguments(op, mcp_ids)))
            response = await rest_call(http, op, example_arguments(op, rest_ids))
            assert response.status_code == op.http_status, (op.name, response.text)
            assert _normalized(over_mcp) == _normalized(response.json()), op.name
            covered.add(op.name)

    assert covered == {op.name for op in TOOLS} - set(EXCLUDED)
    assert len(covered) + len(EXCLUDED) == len(TOOLS)


@pytest.mark.parametrize("op", [op for op in TOOLS if op.path_params], ids=lambda op: op.name)
async def test_a_missing_resource_is_the_same_error_over_rest_and_mcp(store, tenant, app, op):
    arguments = {
        **example_arguments(op, (await seed(store, tenant)).ids),
        op.path_params[-1]: "missing_0123456789",
    }
    async with mcp_client(store, tenant.key) as client, rest_client(app, tenant.key) as http:
        over_mcp, over_rest, status = await _over_both(client, http, op, arguments)
    assert status == 404
    assert over_mcp == over_rest and over_rest["error"] == "not_found"
