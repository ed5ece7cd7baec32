"""The REST API `/api/v1`, generated from the operation catalog.

Each operation's `http_method` and `http_path` become a route. Path parameters,
query parameters (reads and deletes) and the JSON body (writes) are merged into the
operation's arguments and run through the same `run_operation` as MCP, so the REST
and MCP answers carry the same data and the same errors.
"""

from __future__ import annotations

import json
import logging
import re
import types
import typing
from collections import defaultdict
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.auth import bearer_token, unauthorized_response
from server.mcp_app import Runtime
from tools.accounts import authenticate_api_key
from tools.catalog import Operation
from tools.errors import (
    BadRequest,
    BlohkoError,
    InternalError,
    RateLimited,
    Unauthorized,
)
from tools.registry import ALL_OPERATIONS
from tools.runner import run_operation

__all__ = ["API_PREFIX", "MAX_BODY_BYTES", "error_response", "rest_routes"]

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1024 * 1024
_PATH_PARAM = re.compile(r"{(\w+)}")
_BODY_METHODS = {"POST", "PATCH", "PUT"}

logger = logging.getLogger("blohko.rest")


def error_response(error: BlohkoError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


def _scalar_type(annotation: Any) -> Any:
    """`int | None` -> int: the type a query string value should become."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return members[0] if len(members) == 1 else str
    return annotation


def _query_value(op: Operation, name: str, raw: str) -> Any:
    fields = {field.alias or key: field for key, field in op.input_model.model_fields.items()}
    field = fields.get(name)
    if field is None:
        return raw  # the model refuses it as an unknown field, by name
    target = _scalar_type(field.annotation)
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
    return raw


async def _read_json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(f"Invalid input: the request body is larger than {MAX_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"Invalid input: the request body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("Invalid input: the request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BadRequest("Invalid input: the request body must be a JSON object")
    return parsed


async def _arguments(op: Operation, request: Request) -> dict[str, Any]:
    path_params = dict(request.path_params)
    arguments: dict[str, Any] = {}
    if op.http_method in _BODY_METHODS:
        arguments = await _read_json_body(request)
        clashing = sorted(set(arguments) & set(path_params))
        if clashing:
            raise BadRequest(f"Invalid input: {', '.join(clashing)}: belongs in the URL path, not the body")
    else:
        for name, raw in request.query_params.multi_items():
            if name in arguments:
                raise BadRequest(f"Invalid input: {name}: given more than once")
            arguments[name] = _query_value(op, name, raw)
    arguments.update(path_params)
    return arguments


def _endpoint(operations: dict[str, Operation], runtime: Runtime):
    async def endpoint(request: Request) -> Response:
        # Starlette answers HEAD on GET routes; it runs the GET operation.
        op = operations["GET" if request.method == "HEAD" else request.method]
        token = bearer_token(Headers(scope=request.scope))
        try:
            principal = await authenticate_api_key(runtime.store, token, clock=runtime.clock)
        except Unauthorized as error:
            return unauthorized_response(error, had_token=token is not None)
        try:
            arguments = await _arguments(op, request)
            result = await run_operation(
                op,
                arguments,
                store=runtime.store,
                principal=principal,
                clock=runtime.clock,
                rate_limiter=runtime.rate_limiter,
            )
        except BlohkoError as error:
            return error_response(error)
        except Exception:
            logger.exception("REST %s %s failed", request.method, op.http_path)
            return error_response(InternalError())
        return JSONResponse(result.model_dump(mode="json", by_alias=True), status_code=op.http_status)

    return endpoint


def rest_routes(runtime: Runtime) -> list[Route]:
    by_path: dict[str, dict[str, Operation]] = defaultdict(dict)
    for op in ALL_OPERATIONS:
        by_path[op.http_path][op.http_method] = op
    return [
        Route(API_PREFIX + path, _endpoint(operations, runtime), methods=list(operations))
        for path, operations in by_path.items()
    ]
