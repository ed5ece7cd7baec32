"""Fuzzing every tool from its own input schema, valid and corrupted: never an internal_error,
never a crash, and a rejected call leaves the store exactly as it was.

Examples per tool: `BLOHKO_FUZZ_EXAMPLES` (default 12). A longer run:
    BLOHKO_FUZZ_EXAMPLES=500 uv run pytest tests/test_fuzz.py
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from mcp.shared.exceptions import MCPError
from sqlalchemy.engine import make_url

from storage.engine import Store, open_store
from tests.databases import ENGINE, empty_tables
from tests.factories import make_tenant, mcp_client, store_digest
from tools.registry import ALL_OPERATIONS

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
        shutil.copy(make_url(migrated_template).database, path)
        return f"sqlite+aiosqlite:///{path}"
    portal.call(empty_tables, migrated_template)
    return migrated_template


@pytest.mark.parametrize("op", ALL_OPERATIONS, ids=lambda op: op.name)
def test_fuzzed_arguments_never_crash_and_rejections_change_nothing(op, portal, fuzz_database):
    # Hypothesis drives sync tests; the store and client live on the portal's event loop.
    with portal.wrap_async_context_manager(open_store(fuzz_database)) as store:
        tenant = portal.call(lambda: make_tenant(store, name="Fuzz Academy", permissions=["*"]))
        with portal.wrap_async_context_manager(mcp_client(store, tenant.key)) as client:
            _run_examples(op, portal, store, client)


def _run_examples(op, portal: BlockingPortal, store: Store, client) -> None:
    valid = from_schema(copy.deepcopy(op.input_schema))  # it canonicalises schemas in place

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(arguments=st.one_of(valid, _corrupted(valid)))
    def check(arguments: dict) -> None:
        before = portal.call(store_digest, store)
        try:
            result = portal.call(client.call_tool, op.name, arguments)
        except MCPError as refused:  # a protocol-level refusal is fine; a crash is not
            assert "internal" not in refused.error.message.lower(), refused.error.message
            assert portal.call(store_digest, store) == before
            return
        if result.is_error:
            body = json.loads(result.content[0].text)
            assert body["error"] != "internal_error", f"{op.name}({arguments!r}) -> {body}"
            assert set(body) == {"error", "message"} and body["message"]
            assert portal.call(store_digest, store) == before, f"rejected {op.name} changed the store"

    check()
