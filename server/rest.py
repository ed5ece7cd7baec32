"""The REST API `/api/v1`, generated from the operation catalog.

Each operation's `http_method` and `http_path` become a route. Path parameters, query
parameters (reads and deletes) or the JSON body (writes) are merged into the operation's
arguments and run through the same `run_operation` as MCP, so the REST and MCP answers
carry the same data and the same errors. Only the status differs by transport: a key
without the permission gets 403 here where MCP answers "unknown tool". A create's
`Idempotency-Key` header is MCP's `idempotencyKey` argument: a retry with it answers the first
call's status and body.

Every route under `/api/v1` but the OpenAPI document is an operation's: API-key operations,
and the producer's sign-in, sign-out and key management (authenticated by a session). The
one function `server.auth.authenticate_request` authenticates each request as its operation's
`auth` says; `run_operation` alone decides permissions. `Endpoint` describes one route for the
OpenAPI document (server/openapi.py).
"""

from __future__ import annotations

import json
import logging
import types
import typing
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.auth import (
    SESSION_COOKIE,
    authenticate_request,
    bearer_token,
    cookie_options,
    unauthorized_response,
)
from server.mcp_app import Runtime
from tools.core.catalog import InputRule, Operation, path_params
from tools.core.errors import (
    BadRequest,
    BlohkoError,
    InternalError,
    Unauthorized,
)
from tools.core.permissions import requirement_json
from tools.core.runner import IDEMPOTENCY_HEADER, run_operation
from tools.domains.sign_ins import LoginResult
from tools.registry import served_over

__all__ = [
    "API_PREFIX",
    "MAX_BODY_BYTES",
    "MAX_BODY_DEPTH",
    "Endpoint",
    "catalog_endpoints",
    "error_response",
    "json_response",
    "request_arguments",
    "respond",
    "rest_routes",
    "session_cookie",
]

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1024 * 1024
MAX_BODY_DEPTH = 32
"""How deeply a JSON body may nest; the deepest the API takes, a course's sections' lessons, nests 5."""
_BODY_METHODS = {"POST", "PATCH", "PUT"}

logger = logging.getLogger("blohko.rest")


@dataclass(frozen=True)
class Endpoint:
    """One REST route as clients see it: where each input field travels, what it answers, who may call it.

    Path parameters are the input fields named in `path`; the other fields are the JSON
    body of a POST/PATCH/PUT and query parameters otherwise.
    """

    name: str
    method: str
    path: str
    """Below `API_PREFIX`, e.g. `/courses/{courseId}`."""
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    status: int
    auth: Literal["api_key", "session", "none"]
    errors: tuple[int, ...]
    """Every error status the route can answer."""
    tag: str
    takes_idempotency_key: bool = False
    """A create: a retry with the same `Idempotency-Key` header returns the first result."""
    input_rules: tuple[InputRule, ...] = ()
    """Rules on the input that its JSON schema cannot state, each answered with its own error."""
    permission: Any = None
    """What a key must be granted, as `tools.core.permissions.requirement_json` writes it (None: any key)."""

    @property
    def path_params(self) -> tuple[str, ...]:
        return path_params(self.path)

    @property
    def takes_body(self) -> bool:
        return self.method in _BODY_METHODS


def _takes_ids(op: Operation) -> bool:
    aliases = (field.alias or name for name, field in op.input_model.model_fields.items())
    return bool(op.path_params) or any(alias == "id" or alias.endswith("Id") for alias in aliases)


def _endpoint_auth(op: Operation) -> Literal["api_key", "session", "none"]:
    if "api_key" in op.auth:
        return "api_key"
    return "session" if "session" in op.auth else "none"


def catalog_endpoint(op: Operation, also: tuple[str, str] | None = None) -> Endpoint:
    """`op`'s REST route: its main path, or `also`, one of its other paths (path, operationId)."""
    if op.http_method is None or op.http_path is None:
        raise ValueError(f"{op.name} has no REST route (no HTTP method and path)")
    auth = _endpoint_auth(op)
    errors = [400, 401]  # no credentials, or (signing in) the wrong ones
    if op.permission is not None or "producerId" in _field_annotations(op.input_model):
        errors.append(403)  # lacking the permission; a session naming another producer
    if _takes_ids(op):
        errors.append(404)
    if not op.read_only and auth != "none":
        errors.append(409)  # a write can always meet a constraint that a concurrent write claimed
    errors += [rule.error.status for rule in op.input_rules if rule.error.status not in errors]
    errors.append(429)  # every call counts against its key's or session's rate limit; sign-in has a throttle
    errors.append(500)
    if op.audited:
        errors.append(503)  # on SQLite a write (or an audited read) can wait too long for its turn
    path, name = also or (op.http_path, op.name)
    return Endpoint(
        name=name,
        method=op.http_method,
        path=path,
        title=op.title,
        description=op.description,
        input_model=op.input_model,
        output_model=op.output_model,
        status=op.http_status,
        auth=auth,
        errors=tuple(sorted(errors)),
        tag=op.http_path.split("/")[1],  # the main path's: an alias is documented beside it
        takes_idempotency_key=op.takes_idempotency_key,
        input_rules=op.input_rules,
        permission=requirement_json(op.permission),
    )


def catalog_endpoints() -> list[Endpoint]:
    """Every REST route of the catalog: each operation's main path, then its other paths."""
    return [endpoint for op in served_over("rest") for endpoint in _endpoints_of(op)]


def _endpoints_of(op: Operation) -> list[Endpoint]:
    return [catalog_endpoint(op), *(catalog_endpoint(op, also) for also in op.http_also)]


# ---- requests


def error_response(error: BlohkoError) -> JSONResponse:
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


def json_response(result: BaseModel, status: int = 200) -> Response:
    # pydantic writes the same compact JSON as `JSONResponse` would from the dumped dict, faster.
    return Response(result.model_dump_json(by_alias=True), status_code=status, media_type="application/json")


def _scalar_type(annotation: Any) -> Any:
    """`int | None` -> int: the type a query string value should become."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _scalar_type(members[0]) if len(members) == 1 else str
    if typing.get_origin(annotation) is typing.Annotated:
        return _scalar_type(typing.get_args(annotation)[0])
    return annotation


def _field_annotations(model: type[BaseModel]) -> dict[str, Any]:
    return {field.alias or name: field.annotation for name, field in model.model_fields.items()}


def _typed(annotations: dict[str, Any], name: str, raw: str) -> Any:
    """A URL value as the type its field expects; the model then validates it like any JSON value."""
    target = _scalar_type(annotations.get(name, str))
    if target is bool:
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise BadRequest(f"Invalid input: {name}: must be true or false")
    if target is int:
        try:
            return int(raw)
        except ValueError:
            raise BadRequest(f"Invalid input: {name}: must be an integer") from None
    if typing.get_origin(target) is list:  # `types=a,b`: OpenAPI's form style without explode
        return [part for part in raw.split(",") if part]
    return raw


_TOO_DEEP = f"Invalid input: the request body is nested too deeply (at most {MAX_BODY_DEPTH} levels)"
_LONE_SURROGATE = "Invalid input: the request body holds a lone UTF-16 surrogate"


def _is_text(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_body_shape(body: dict[str, Any]) -> None:
    """Refuse a body nested deeper than `MAX_BODY_DEPTH`, or holding a lone UTF-16 surrogate in
    any key or value (`"\\ud800"` is valid JSON but no text any database stores, nor any response).

    Walks level by level, without recursion: a recursive walk, or a recursive encoder such as
    `json.dumps`, is what a deep body would overflow.
    """
    level: list[dict[str, Any] | list[Any]] = [body]
    for _ in range(MAX_BODY_DEPTH):
        deeper: list[dict[str, Any] | list[Any]] = []
        for container in level:
            for item in (*container, *container.values()) if isinstance(container, dict) else container:
                if isinstance(item, dict | list):
                    deeper.append(item)
                elif isinstance(item, str) and not _is_text(item):
                    raise BadRequest(_LONE_SURROGATE)
        if not deeper:
            return
        level = deeper
    raise BadRequest(_TOO_DEEP)


_JSON_WHITESPACE = b" \t\r\n"


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def _read_json_body(request: Request) -> dict[str, Any]:
    too_large = BadRequest(f"Invalid input: the request body is larger than {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    if not body.strip(
        _JSON_WHITESPACE
    ):  # no body; bytes.strip() would also take \x0b and \x0c, which JSON does not
        return {}
    if not _is_json(request.headers.get("content-type")):
        # A browser posts text/plain or a form across sites without asking first; JSON it cannot.
        raise BadRequest("Invalid input: send the request body as JSON with Content-Type: application/json")
    try:
        parsed = json.loads(body)
    except RecursionError:  # the parser's own guard: nested far past MAX_BODY_DEPTH
        raise BadRequest(_TOO_DEEP) from None
    except ValueError:
        raise BadRequest("Invalid input: the request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BadRequest("Invalid input: the request body must be a JSON object")
    _check_body_shape(parsed)
    return parsed


async def request_arguments(endpoint: Endpoint, request: Request) -> dict[str, Any]:
    """The endpoint's input fields from the request: path parameters plus the body or the query."""
    annotations = _field_annotations(endpoint.input_model)
    arguments: dict[str, Any] = {}
    if endpoint.takes_body:
        if request.query_params:
            names = ", ".join(sorted(set(request.query_params)))
            raise BadRequest(f"Invalid input: {names}: unknown query parameter; send fields in the JSON body")
        arguments = await _read_json_body(request)
        clashing = sorted(set(arguments) & set(request.path_params))
        if clashing:
            raise BadRequest(f"Invalid input: {', '.join(clashing)}: belongs in the URL path, not the body")
    else:
        for name, raw in request.query_params.multi_items():
            if name in arguments:
                raise BadRequest(f"Invalid input: {name}: given more than once")
            if name in request.path_params:
                raise BadRequest(f"Invalid input: {name}: belongs in the URL path, not the query")
            arguments[name] = _typed(annotations, name, raw)
    for name, raw in request.path_params.items():
        arguments[name] = _typed(annotations, name, raw)
    return arguments


async def respond(request: Request, work: Callable[[], Awaitable[Response]]) -> Response:
    """`work()`'s response, or the error body for what it raised: the same for every REST route."""
    try:
        return await work()
    except Unauthorized as error:
        return unauthorized_response(error, had_token=bearer_token(Headers(scope=request.scope)) is not None)
    except BlohkoError as error:
        return error_response(error)
    except Exception:
        logger.exception("REST %s %s failed", request.method, request.url.path)
        return error_response(InternalError())


# ---- catalog routes


def _operation_endpoint(routes: dict[str, tuple[Operation, Endpoint]], runtime: Runtime):
    operations = {method: op for method, (op, _) in routes.items()}
    endpoints = {method: endpoint for method, (_, endpoint) in routes.items()}

    async def endpoint(request: Request) -> Response:
        # Starlette answers HEAD on GET routes; it runs the GET operation.
        method = "GET" if request.method == "HEAD" else request.method
        op = operations[method]

        async def work() -> Response:
            principal = await authenticate_request(
                request, store=runtime.store, clock=runtime.clock, accepted=op.auth
            )
            result = await run_operation(
                op,
                lambda: request_arguments(endpoints[method], request),
                store=runtime.store,
                principal=principal,
                clock=runtime.clock,
                rate_limiter=runtime.rate_limiter,
                services=runtime.services,
                client_address=request.client.host if request.client else None,
                # Refused on any other route: a client that sends one expects a safe retry.
                idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
            )
            response = json_response(result, op.http_status)  # a replay answers as the first call did
            if op.session_cookie is not None:
                session_cookie(request, response, op.session_cookie, result)
            return response

        return await respond(request, work)

    return endpoint


def session_cookie(request: Request, response: Response, action: str, result: BaseModel | None) -> None:
    """Set the session cookie from a sign-in's result (`cookie_options`: HttpOnly, SameSite=Strict,
    Secure over https or behind an https public URL, lasting as long as the session), or clear it at
    sign-out. One cookie for the REST API and the Producer Dashboard, so its path is `/`."""
    options = cookie_options(request, path="/")
    if action == "clear":
        response.delete_cookie(SESSION_COOKIE, **options)
        return
    if not isinstance(result, LoginResult):
        raise TypeError(f"the session cookie is set from a sign-in's result, not {type(result).__name__}")
    session = result.session
    lifetime = (session.expires_at - session.created_at).total_seconds()
    response.set_cookie(SESSION_COOKIE, session.token, max_age=int(lifetime), **options)


def rest_routes(runtime: Runtime) -> list[Route]:
    """One route per catalog path, serving each of its operations' methods."""
    by_path: dict[str, dict[str, tuple[Operation, Endpoint]]] = defaultdict(dict)
    for op in served_over("rest"):
        for endpoint in _endpoints_of(op):
            by_path[endpoint.path][endpoint.method] = (op, endpoint)
    return [
        Route(API_PREFIX + path, _operation_endpoint(routes, runtime), methods=list(routes))
        for path, routes in by_path.items()
    ]
