"""The published tool list, precomputed: what `tools/list` answers, read from a JSON file shipped
in the package instead of built from the catalog.

Building the list from the catalog imports every operation module, its pydantic models and the
store's tables: seconds of a stdio server's cold start, before its first answer. The file
(`published_tools.json`, beside this module) holds, for each tool in catalog order, its published
entry (name, description, trimmed input schema, annotations: `server.tool_listing` makes them)
and what access needs (its permission and the kinds of caller it admits), so the list can be
served and filtered (`tools.core.permissions.may_call`) before the catalog is loaded.
`server.tool_listing.published_tool_file` generates it; `tests/storage/test_startup.py` fails when
it differs from what the catalog generates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tools.core.permissions import Requirement, requirement_from_json

__all__ = ["CONVENTIONS", "PUBLISHED_TOOLS_FILE", "PublishedTool", "published_tools"]

PUBLISHED_TOOLS_FILE = Path(__file__).with_name("published_tools.json")

CONVENTIONS = (
    "List tools take page (from 1, default 1) and limit (1-100, default 20) and answer "
    "{data, pagination}; with updatedAfter, only rows created or changed after it, oldest change "
    "first. Times are ISO 8601 with a timezone (2026-05-01T09:00:00Z). Update tools change only the fields given; null clears a field whose "
    "type allows null. Create tools take idempotencyKey: a retry with the same key and arguments "
    "returns the first result."
)
"""What every tool shares, said once in the server instructions instead of in every schema."""


@dataclass(frozen=True)
class PublishedTool:
    """One tool as `tools/list` publishes it, with the permission and caller kinds `may_call` reads."""

    name: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any]
    """The wire form (`readOnlyHint`, ...): only the hints `server.tool_listing` gives."""
    permission: Requirement | None
    auth: frozenset[str]
    meta: dict[str, Any] | None = None
    """The wire `_meta`: the MCP Apps view that renders the tool's result (`server.views`)."""

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> PublishedTool:
        return cls(
            name=entry["name"],
            description=entry["description"],
            input_schema=entry["inputSchema"],
            annotations=entry["annotations"],
            permission=requirement_from_json(entry["permission"]),
            auth=frozenset(entry["auth"]),
            meta=entry.get("_meta"),
        )


@cache
def published_tools() -> tuple[PublishedTool, ...]:
    """The tools of the shipped list, in catalog order."""
    entries = json.loads(PUBLISHED_TOOLS_FILE.read_text(encoding="utf-8"))["tools"]
    return tuple(PublishedTool.from_entry(entry) for entry in entries)
