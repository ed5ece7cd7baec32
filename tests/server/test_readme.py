"""The README's generated parts match what they describe: the tool table (the catalog) and the
measured size of tools/list. `BLOHKO_UPDATE_SNAPSHOTS=1` rewrites both."""

from __future__ import annotations

import json
import os
import re

from tests.support.factories import tools_list_over_http
from tests.support.node_tools import ROOT
from tools.registry import TOOLS

README = ROOT / "README.md"
UPDATE_SNAPSHOTS = os.environ.get("BLOHKO_UPDATE_SNAPSHOTS") == "1"
_TABLE = re.compile(r"(<!-- tools-table:.*?-->\n)(.*?)(<!-- /tools-table -->)", re.DOTALL)
_SIZE = re.compile(r"\*\*[\d,]+ bytes\*\* for \d+ tools \(\d+ bytes a tool\)")


def _tools_table() -> str:
    rows = ["| tool | permission | hints |", "|---|---|---|"]
    for op in TOOLS:
        permission = f"`{op.permission}`" if op.permission else "any valid key"
        hints = "read-only" if op.read_only else "destructive" if op.destructive else "writes"
        if op.idempotent and not op.read_only:
            hints += ", idempotent"
        rows.append(f"| `{op.name}` | {permission} | {hints} |")
    return "\n".join(rows) + "\n"


def _size_line(size: int, count: int) -> str:
    return f"**{size:,} bytes** for {count} tools ({size // count} bytes a tool)"


def _rewrite(pattern: re.Pattern, replace) -> None:
    README.write_text(pattern.sub(replace, README.read_text(), count=1))


def test_readme_tool_table_lists_every_tool_with_its_permission():
    if UPDATE_SNAPSHOTS:
        _rewrite(_TABLE, lambda match: match.group(1) + _tools_table() + match.group(3))
    match = _TABLE.search(README.read_text())
    assert match, "README lost its tools-table markers"
    assert match.group(2) == _tools_table(), (
        "regenerate with BLOHKO_UPDATE_SNAPSHOTS=1 uv run pytest tests/server/test_readme.py"
    )


async def test_readme_states_the_measured_size_of_tools_list(store, tenant):
    body = await tools_list_over_http(store, tenant.key)
    expected = _size_line(len(body), len(json.loads(body)["result"]["tools"]))
    if UPDATE_SNAPSHOTS:
        _rewrite(_SIZE, lambda _: expected)
    stated = _SIZE.findall(README.read_text())
    assert stated == [expected], (
        "regenerate with BLOHKO_UPDATE_SNAPSHOTS=1 uv run pytest tests/server/test_readme.py"
    )
