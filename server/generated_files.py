"""The files of the repository that are generated from the catalog, and what each must contain.

Four files say what the catalog's tools are, and a fifth what the prompts are; none is edited by hand:

- `server/published_tools.json`: what `tools/list` serves (shipped in the package);
- `manifest.json`'s `tools`: the MCP Bundle's tool list, as a desktop host shows it;
- the README's tools by permission, between its `tools-table` markers, and its measured size of
  `tools/list` for a key with every permission;
- docs/tools.md's table of every tool with its permission and hints, between the same markers;
- docs/prompts.md's table of prompts (from `server.prompts.PROMPTS`), between its `prompts-table` markers.

`scripts/regenerate` rewrites them (`python -m server.generated_files --write`); the test suite
only checks them (`tests/server/test_generated_files.py`), failing with the list of stale files and the
command. Run from a checkout: the README and the manifest are not in the installed package.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
REGENERATE_COMMAND = "scripts/regenerate"

_TOOLS_TABLE = re.compile(r"(<!-- tools-table:.*?-->\n)(.*?)(<!-- /tools-table -->)", re.DOTALL)
_PROMPTS_TABLE = re.compile(r"(<!-- prompts-table:.*?-->\n)(.*?)(<!-- /prompts-table -->)", re.DOTALL)
_TOOLS_LIST_SIZE = re.compile(r"\*\*[\d,]+ bytes\*\* for \d+ tools \(\d+ bytes a tool\)")


@dataclass(frozen=True)
class GeneratedFile:
    """One generated file: its path in the repository and how to compute its text from the
    text it has now (a file with generated parts keeps the rest of its text)."""

    path: str
    generate: Callable[[str], str]


def published_tools_text(_current: str) -> str:
    from server.tool_listing import published_tool_file
    from tools.registry import TOOLS

    return published_tool_file(TOOLS)


def manifest_text(current: str) -> str:
    from server.tool_listing import published_description
    from tools.registry import TOOLS

    manifest = json.loads(current)
    manifest["tools"] = [{"name": op.name, "description": published_description(op)} for op in TOOLS]
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def tools_table() -> str:
    """docs/tools.md's table of tools: name, permission and what the tool does to data."""
    from tools.registry import TOOLS

    rows = ["| tool | permission | hints |", "|---|---|---|"]
    for op in TOOLS:
        permission = _requirement_markdown(op.permission)
        hints = "read-only" if op.read_only else "destructive" if op.destructive else "writes"
        if op.idempotent and not op.read_only:
            hints += ", idempotent"
        rows.append(f"| `{op.name}` | {permission} | {hints} |")
    return "\n".join(rows) + "\n"


def tools_by_permission() -> str:
    """The README's short table: each permission with the tools it opens, in `Permission`'s order
    (any valid key first, a pair or a choice last); the hints are in docs/tools.md's table."""
    from tools.core.permissions import Permission
    from tools.registry import TOOLS

    order = [None, *Permission]
    grouped: dict[object, list[str]] = {}
    for op in TOOLS:
        grouped.setdefault(op.permission, []).append(f"`{op.name}`")
    rows = ["| permission | tools |", "|---|---|"]
    for required in sorted(grouped, key=lambda r: order.index(r) if r in order else len(order)):
        rows.append(f"| {_requirement_markdown(required)} | {', '.join(grouped[required])} |")
    return "\n".join(rows) + "\n"


def _requirement_markdown(required: object) -> str:
    from tools.core.permissions import AllOf, AnyOf

    if isinstance(required, AllOf):
        return " + ".join(f"`{p}`" for p in required.permissions)
    if isinstance(required, AnyOf):
        return "any of " + ", ".join(f"`{p}`" for p in required.permissions)
    return f"`{required}`" if required else "any valid key"


def prompts_table() -> str:
    """docs/prompts.md's table: each prompt, its arguments, the tools it names and what a key needs."""
    from server.prompts import PROMPTS
    from server.published_tools import published_tools

    tools = {tool.name: tool for tool in published_tools()}
    rows = ["| prompt | arguments | tools it names | a key needs |", "|---|---|---|---|"]
    for prompt in PROMPTS:
        arguments = ", ".join(argument.summary for argument in prompt.arguments)
        named = ", ".join(f"`{name}`" for name in prompt.tools)
        needs = dict.fromkeys(
            _requirement_markdown(tools[name].permission) for name in prompt.tools if tools[name].permission
        )
        rows.append(f"| `{prompt.name}` | {arguments} | {named} | {' + '.join(needs) or 'any valid key'} |")
    return "\n".join(rows) + "\n"


def prompts_doc_text(current: str) -> str:
    if not _PROMPTS_TABLE.search(current):
        raise ValueError(
            "docs/prompts.md lost its <!-- prompts-table: ... --> <!-- /prompts-table --> markers"
        )
    return _PROMPTS_TABLE.sub(
        lambda match: match.group(1) + prompts_table() + match.group(3), current, count=1
    )


def tools_list_size_line(body: bytes) -> str:
    """The README's statement of how much context `tools/list` takes, from the response `body`."""
    count = len(json.loads(body)["result"]["tools"])
    return f"**{len(body):,} bytes** for {count} tools ({len(body) // count} bytes a tool)"


def _with_table(current: str, path: str, table: str) -> str:
    """`current` with `table` between its `tools-table` markers."""
    if not _TOOLS_TABLE.search(current):
        raise ValueError(f"{path} lost its <!-- tools-table: ... --> <!-- /tools-table --> markers")
    return _TOOLS_TABLE.sub(lambda match: match.group(1) + table + match.group(3), current, count=1)


def docs_tools_text(current: str) -> str:
    return _with_table(current, "docs/tools.md", tools_table())


def readme_text(current: str) -> str:
    if len(_TOOLS_LIST_SIZE.findall(current)) != 1:
        raise ValueError("README.md must state the size of tools/list once (**N bytes** for N tools ...)")
    text = _with_table(current, "README.md", tools_by_permission())
    size_line = tools_list_size_line(full_key_tools_list_body())
    return _TOOLS_LIST_SIZE.sub(lambda _: size_line, text, count=1)


@functools.cache
def full_key_tools_list_body() -> bytes:
    """`full_key_tools_list`, measured once a process (it starts an app on a new database)."""
    return asyncio.run(full_key_tools_list())


async def full_key_tools_list() -> bytes:
    """The body of a streamable-HTTP `tools/list` answer for a key with every permission, as the
    server sends it: a real app and a new school on a temporary SQLite store."""
    import httpx

    from server.http_app import create_http_app
    from server.runtime import Runtime
    from server.settings import Settings
    from storage.engine import open_store
    from storage.ids import utcnow
    from storage.migrate import upgrade_async
    from tools.core.internal import writing
    from tools.domains.accounts import create_api_key, create_producer

    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/generated.db"
        await upgrade_async(url)
        async with open_store(url) as store:
            async with writing(store, "generated files' school") as db:
                made = await create_producer(
                    db,
                    name="School",
                    email="owner@example.com",
                    password="generated-files",
                    clock=utcnow,
                )
                key = await create_api_key(
                    db, producer_id=made.producer.id, name="all", permissions=["*"], clock=utcnow
                )
            app = create_http_app(Settings(database_url=url), Runtime(store=store))
            request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
            headers = {"Authorization": f"Bearer {key.key}", "Accept": "application/json, text/event-stream"}
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                    response = await http.post("/mcp", json=request, headers=headers)
    response.raise_for_status()
    return response.content


GENERATED_FILES = (
    GeneratedFile("server/published_tools.json", published_tools_text),
    GeneratedFile("manifest.json", manifest_text),
    GeneratedFile("README.md", readme_text),
    GeneratedFile("docs/tools.md", docs_tools_text),
    GeneratedFile("docs/prompts.md", prompts_doc_text),
)


def stale_files(root: Path = REPOSITORY) -> list[str]:
    """The generated files under `root` whose text differs from what they must contain."""
    return [
        generated.path
        for generated in GENERATED_FILES
        if (current := (root / generated.path).read_text(encoding="utf-8")) != generated.generate(current)
    ]


def write_files(root: Path = REPOSITORY) -> list[str]:
    """Rewrite the generated files under `root`; the paths of those that changed."""
    changed = []
    for generated in GENERATED_FILES:
        path = root / generated.path
        current = path.read_text(encoding="utf-8")
        if (text := generated.generate(current)) != current:
            path.write_text(text, encoding="utf-8")
            changed.append(generated.path)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="rewrite the stale files (default: list them)")
    args = parser.parse_args()
    # The app measured for the README logs its requests at INFO: not what this command reports.
    for name in ("mcp", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.write:
        for path in write_files():
            print(f"rewrote {path}")
        return
    if stale := stale_files():
        raise SystemExit(f"stale: {', '.join(stale)}; run {REGENERATE_COMMAND}")
    print("every generated file is current")


if __name__ == "__main__":
    main()
