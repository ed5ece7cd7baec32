"""The MCP Apps views (the `io.modelcontextprotocol/ui` extension, SEP-1865): four HTML views
that a host such as Claude or ChatGPT renders in the conversation beside a tool's answer.

Each view is a `ui://blohko/<name>` resource of MIME type `text/html;profile=mcp-app`, one
self-contained HTML file built from `src/` by `build.mjs` (esbuild; `scripts/regenerate` runs it
and `tests/server/test_views.py` fails when a committed file is stale). Tools that open a view name
it in their `_meta.ui.resourceUri` (written into `server/published_tools.json` by
`server.tool_listing`). The `_meta` is always published: the listing is served statelessly over
HTTP, so no request knows what its client declared in `initialize`, and the MCP specification has
hosts ignore `_meta` keys they do not know; a host without the extension sees the same tools.

A view reads nothing itself: it renders the result of the tool call the host shows it and calls
further tools through the host (`App.callServerTool`), so it gets exactly what the key may read
through the tools (one way in). A view is listed and readable only where the key may call a tool
that opens it (`serve_view_request`, called from `server.mcp_app`'s access middleware, deciding
with `tools.core.permissions.may_call`). Serving a view loads neither the catalog nor the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mcp.server.mcpserver.resources import FunctionResource
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, ListResourcesResult

from server.listings import only_listed
from tools.core.permissions import may_call
from tools.core.principal import Principal

__all__ = [
    "VIEWS",
    "VIEWS_DIRECTORY",
    "VIEW_METHODS",
    "VIEW_MIME_TYPE",
    "View",
    "serve_view_request",
    "tool_view_meta",
    "view_resources",
]

VIEW_MIME_TYPE = "text/html;profile=mcp-app"
VIEWS_DIRECTORY = Path(__file__).parent
VIEW_METHODS = frozenset({"resources/list", "resources/read"})

_NO_EXTERNAL_ORIGIN = {"connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": []}
"""The CSP a view asks of its host: no origin beyond its own document (it fetches nothing)."""


@dataclass(frozen=True)
class View:
    """One view: its name (`ui://blohko/<name>`, `<name>.html`), what it shows, and the tools
    whose results it renders (a key sees the view where it may call one of them)."""

    name: str
    title: str
    description: str
    opened_by: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f"ui://blohko/{self.name}"

    @property
    def path(self) -> Path:
        return VIEWS_DIRECTORY / f"{self.name}.html"

    def html(self) -> str:
        return self.path.read_text(encoding="utf-8")


VIEWS = (
    View(
        "course",
        "Course",
        "A course's curriculum as an outline and, with enrollments:read, its lesson funnel.",
        ("get_course", "get_course_insights"),
    ),
    View(
        "attention",
        "Learners needing attention",
        "Learners gone silent, each with a button to draft a message or open the student.",
        ("find_students_needing_attention",),
    ),
    View(
        "thread",
        "Thread",
        "A community thread with its comment tree, and a reply box.",
        ("get_thread",),
    ),
    View(
        "report",
        "School report",
        "The school report's figures against the period before, charted.",
        ("get_school_report",),
    ),
)

RESOURCE_META = {"ui": {"csp": _NO_EXTERNAL_ORIGIN, "prefersBorder": True}}
"""The `_meta` of every view, in `resources/list` and on `resources/read`'s contents."""


@cache
def _views_by_tool() -> dict[str, View]:
    return {tool: view for view in VIEWS for tool in view.opened_by}


def tool_view_meta(tool_name: str) -> dict[str, Any] | None:
    """The `_meta` a tool is published with: the view that renders its result, if any."""
    view = _views_by_tool().get(tool_name)
    return {"ui": {"resourceUri": view.uri}} if view else None


def view_resources() -> list[FunctionResource]:
    """The SDK resources of the views; the HTML is read from the package when a view is read."""
    return [
        FunctionResource(
            uri=view.uri,
            name=view.name,
            title=view.title,
            description=view.description,
            mime_type=VIEW_MIME_TYPE,
            meta=RESOURCE_META,
            fn=view.html,
        )
        for view in VIEWS
    ]


def _may_open(principal: Principal, view: View, tools: Mapping[str, Any]) -> bool:
    return any(name in tools and may_call(principal, tools[name]) for name in view.opened_by)


async def serve_view_request(
    method: str,
    params: Mapping[str, Any] | None,
    principal: Principal,
    tools: Mapping[str, Any],
    call_next: Callable[[], Awaitable[Any]],
) -> Any:
    """Answer `resources/list` with the views `principal` may open, and `resources/read` of a
    view it may not open exactly like an unknown resource; `tools` are the published tools by
    name (what `may_call` decides on)."""
    hidden = {view.uri for view in VIEWS if not _may_open(principal, view, tools)}
    if method == "resources/read":
        uri = (params or {}).get("uri")
        if uri in hidden:
            # The SDK's own answer for a URI it does not know (`MCPServer._handle_read_resource`).
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown resource: {uri}", data={"uri": uri})
        return await call_next()
    return only_listed(
        await call_next(), ListResourcesResult, "resources", "uri", lambda uri: uri not in hidden
    )
