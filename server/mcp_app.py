"""The MCP server, built from the operation catalog.

`create_mcp_server` makes one SDK tool per operation, published as `server.tool_listing`
says (input schema from the operation's input model, trimmed; no output schema).
Arguments reach `run_operation` untouched, so validation, errors and transactions are the
same as over REST.

`_access_middleware` authenticates the caller on every `tools/list` and `tools/call` (a
revoked key stops at once, even in an open session) and filters the list by the same
decision `run_operation` enforces on every call (`tools.core.catalog.may_call`). A call the
runner refuses as `Forbidden` is answered exactly like an unknown tool.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    CallToolResult,
    ListToolsResult,
    TextContent,
)
from pydantic import ConfigDict

from server.auth import PRINCIPAL_STATE_KEY
from server.settings import Settings
from server.tool_listing import (
    CONVENTIONS,
    published_annotations,
    published_description,
    published_input_schema,
)
from storage.engine import Store
from storage.ids import utcnow
from storage.rate_limits import counter_for
from tools.core.catalog import Operation, may_call
from tools.core.context import Clock, Principal, Services
from tools.core.errors import BlohkoError, NotPermitted, Unauthorized
from tools.core.login_throttle import LoginThrottle
from tools.core.passwords import limit_concurrent_hashes
from tools.core.ratelimit import RateLimiter
from tools.core.runner import run_operation
from tools.domains.accounts import authenticate_api_key
from tools.registry import TOOLS

__all__ = ["Runtime", "create_mcp_server", "error_result"]

INSTRUCTIONS = (
    "Blohko runs an online school and its community: courses with sections and lessons, "
    "students, enrollments with progress, and communities. Call whoami to see your producer "
    "and permissions. Errors come back as JSON {error, message}; fix the named field and retry. "
    + CONVENTIONS
)

_current_principal: ContextVar[Principal] = ContextVar("blohko_principal")
_TOOLS_BY_NAME = {op.name: op for op in TOOLS}


@dataclass
class Runtime:
    """What every request shares: the store, the clock, the rate limiter, and the settings
    operations need (session lifetime, login throttle)."""

    store: Store
    clock: Clock = utcnow
    rate_limiter: RateLimiter | None = None
    services: Services = field(default_factory=Services)

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> Runtime:
        limit = settings.rate_limit_per_minute
        limit_concurrent_hashes(settings.password_hash_concurrency)  # process-wide, like the hashing threads
        throttle = LoginThrottle(
            per_account=settings.login_failures_per_account,
            per_address=settings.login_failures_per_address,
            window=timedelta(minutes=settings.login_failure_window_minutes),
        )
        return cls(
            store=store,
            rate_limiter=RateLimiter(limit, counter_for(store)) if limit > 0 else None,
            services=Services(
                session_ttl=timedelta(hours=settings.session_ttl_hours),
                login_throttle=throttle,
                event_retention=timedelta(days=settings.event_retention_days),
                webhooks_allow_loopback=settings.webhooks_allow_loopback,
            ),
        )


class _RawArguments(ArgModelBase):
    """Hands the tool its arguments untouched: our input models validate them, with our errors."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.__pydantic_extra__ or {})}


def _json_text(payload: Any) -> list[TextContent]:
    return [TextContent(type="text", text=json.dumps(payload, ensure_ascii=False, separators=(",", ":")))]


def error_result(error: BlohkoError) -> CallToolResult:
    return CallToolResult(content=_json_text(error.to_body()), is_error=True)


def _sdk_tool(op: Operation, runtime: Runtime) -> Tool:
    async def call(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        try:
            result = await run_operation(
                op,
                arguments,
                store=runtime.store,
                principal=_current_principal.get(),
                clock=runtime.clock,
                rate_limiter=runtime.rate_limiter,
                services=runtime.services,
                progress=ctx.report_progress,  # a no-op unless the client sent a progress token
            )
        except NotPermitted:
            # A key that may not call a tool cannot tell it from one that does not exist.
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {op.name}") from None
        except BlohkoError as error:
            return error_result(error)
        payload = result.model_dump(mode="json", by_alias=True)
        return CallToolResult(content=_json_text(payload), structured_content=payload)

    return Tool(
        fn=call,
        name=op.name,
        description=published_description(op),
        parameters=published_input_schema(op),
        fn_metadata=FuncMetadata(arg_model=_RawArguments, output_schema=None),
        is_async=True,
        context_kwarg="ctx",
        annotations=published_annotations(op),
    )


def _principal_from_http(ctx: ServerRequestContext[Any, Any]) -> Principal | None:
    request = ctx.request
    state = getattr(request, "scope", {}).get("state") if request is not None else None
    return state.get(PRINCIPAL_STATE_KEY) if isinstance(state, dict) else None


def _only_visible_tools(result: Any, principal: Principal) -> Any:
    """Filter a tools/list result, which the SDK hands middleware as a wire dict or a model."""

    def visible(name: str) -> bool:
        op = _TOOLS_BY_NAME.get(name)
        return op is not None and may_call(principal, op)

    if isinstance(result, ListToolsResult):
        result.tools = [tool for tool in result.tools if visible(tool.name)]
    elif isinstance(result, dict) and isinstance(result.get("tools"), list):
        result = {**result, "tools": [tool for tool in result["tools"] if visible(tool.get("name"))]}
    else:
        raise TypeError(f"unexpected tools/list result {type(result).__name__}")
    return result


def _access_middleware(runtime: Runtime, api_key: str | None):
    async def resolve(ctx: ServerRequestContext[Any, Any]) -> Principal:
        principal = _principal_from_http(ctx)
        if principal is not None:
            return principal  # authenticated by the HTTP gate for this very request
        try:
            return await authenticate_api_key(runtime.store, api_key, clock=runtime.clock)
        except Unauthorized as error:
            raise MCPError(code=INVALID_REQUEST, message=f"Unauthorized: {error.message}") from None

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext):
        if ctx.method == "tools/list":
            principal = await resolve(ctx)
            result = await call_next(ctx)
            return _only_visible_tools(result, principal)
        if ctx.method == "tools/call":
            principal = await resolve(ctx)
            name = (ctx.params or {}).get("name")
            if not isinstance(name, str) or name not in _TOOLS_BY_NAME:
                # The same answer the tool gives a key that may not call it (`_sdk_tool`).
                raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}")
            token = _current_principal.set(principal)
            try:
                return await call_next(ctx)
            finally:
                _current_principal.reset(token)
        return await call_next(ctx)

    return middleware


def _unknown_prompt_middleware(server: MCPServer):
    # The SDK reports an unknown prompt as a bare ValueError: JSON-RPC code 0 over HTTP, -32603
    # in process. An unknown name is INVALID_PARAMS, as the SDK answers for an unknown resource
    # and we answer for an unknown tool. (Not serving prompts at all, -32601, is no option the
    # SDK offers: MCPServer always registers the prompts methods and advertises them, empty.)
    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext):
        if ctx.method == "prompts/get":
            name = (ctx.params or {}).get("name")
            if isinstance(name, str) and name not in {prompt.name for prompt in await server.list_prompts()}:
                raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name}")
        return await call_next(ctx)

    return middleware


def create_mcp_server(runtime: Runtime, *, api_key: str | None = None) -> MCPServer:
    """An MCP server over `runtime`'s store. `api_key` authenticates stdio and in-process clients;
    over HTTP each request's bearer key, checked by the gate, is used instead."""
    from importlib.metadata import version

    server = MCPServer(
        "blohko",
        title="Blohko",
        version=version("blohko-mcp"),
        instructions=INSTRUCTIONS,
        tools=[_sdk_tool(op, runtime) for op in TOOLS],
        middleware=[_access_middleware(runtime, api_key)],
        warn_on_duplicate_tools=True,
    )
    server.middleware.append(_unknown_prompt_middleware(server))
    return server
