"""The OpenAPI 3.1 document of `/api/v1`, generated from the same models that validate requests.

Each `Endpoint`'s input model is split by where its fields travel: path parameters, then
the JSON body (POST/PATCH/PUT) or query parameters; a create also takes the `Idempotency-Key`
header. Its output model is the success response; every error it can answer shares one `Error` schema. Models used by several
endpoints appear once, under `components/schemas`.

The document is the contract: a request its schemas allow is accepted, or answered by a status
the operation lists for a rule its description states (`InputRule`: 404 for an id that names
nothing, 409 for a state, 422 otherwise), never 400. So every rule JSON Schema can state is in
the schemas: a model's `not` (`tools.core.fields.exactly_one_of`), and no NUL in any text
(`"not": {"pattern": "\\u0000"}` where no whole-text pattern of its own already leaves it out).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from server.rest import API_PREFIX, Endpoint
from tools.core.catalog import InputRule
from tools.core.errors import (
    BadRequest,
    BlohkoError,
    Busy,
    Conflict,
    Forbidden,
    InternalError,
    NotFound,
    RateLimited,
    Unauthorized,
    Unprocessable,
)
from tools.core.fields import REST_SCHEMA
from tools.core.runner import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_TTL

__all__ = ["INPUT_RULES", "PERMISSION", "openapi_document"]

PERMISSION = "x-permission"
"""What an API key must be granted to call the operation: a permission (`"courses:read"`),
`{"allOf": [...]}` (each of them) or `{"anyOf": [...]}` (at least one; the answer leaves out the
parts the key may not read). Absent: any valid key."""

INPUT_RULES = "x-input-rules"
"""An operation's rules on its input that JSON Schema cannot state (`Operation.input_rules`), as a
list of `{"rule": sentence, "status": the status that answers a request breaking it}`."""
_RULES_INTRO = "Rules beyond its schema (JSON Schema cannot state them), each answered with the status named:"

_REF = "#/components/schemas/{model}"
_ERRORS: dict[int, tuple[str, type[BlohkoError], str]] = {
    400: ("BadRequest", BadRequest, "Invalid input: the message names the offending fields."),
    401: ("Unauthorized", Unauthorized, "Missing, invalid, revoked or expired credentials."),
    403: ("Forbidden", Forbidden, "The credentials lack the permission this endpoint needs."),
    404: ("NotFound", NotFound, "The resource does not exist (or belongs to another producer)."),
    409: (
        "Conflict",
        Conflict,
        (
            "Duplicate slug, email, membership or enrollment; an Idempotency-Key reused with other arguments, "
            "or whose create made something deleted since."
        ),
    ),
    422: (
        "Unprocessable",
        Unprocessable,
        "Well-formed input refused by a rule the operation's description states (JSON Schema cannot): the message names it.",
    ),
    429: ("RateLimited", RateLimited, "Over this API key's rate limit; retry after `retryAfter` seconds."),
    500: ("InternalError", InternalError, "An internal error; it has been logged."),
    503: (
        "Busy",
        Busy,
        "The store is busy with other writes; nothing was changed. Retry after `retryAfter` seconds.",
    ),
}
_IDEMPOTENCY_KEY = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    # Printable characters (HTTP carries a header as Latin-1: no control characters, no U+00A0 or
    # U+00AD), and no space at either end, which HTTP drops before the server sees the value.
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "pattern": "^[\\u0021-\\u007e\\u00a1-\\u00ac\\u00ae-\\u00ff](?:[\\u0020-\\u007e\\u00a1-\\u00ac\\u00ae-\\u00ff]*[\\u0021-\\u007e\\u00a1-\\u00ac\\u00ae-\\u00ff])?$",
    },
    "description": (
        f"Makes a retry safe: a request with the same key and the same arguments within "
        f"{IDEMPOTENCY_KEY_TTL // timedelta(hours=1)} hours answers the first one's status and body "
        "without creating anything again. With other arguments it is 409 conflict; so it is when what "
        "the first request created has been deleted since (a new request needs a new key). Each API key, "
        "OAuth grant or session has keys of its own."
    ),
}
_SECURITY = {
    "api_key": [{"apiKey": []}],
    "session": [{"sessionToken": []}, {"sessionCookie": []}],
    "none": [],
}
_NULL = {"type": "null"}
_HOLDS_NUL = {"pattern": "\\u0000"}
"""A text holding NUL (U+0000), which no input model takes: `"not": _HOLDS_NUL` on each text that
no pattern of its own describes. (A `pattern` `^[^\\u0000]*$` says the same, but generators
such as schemathesis make texts from a pattern several times more slowly.)"""
_QUERY_LINKS: dict[tuple[str, str], dict[str, str]] = {
    # Ids that travel in a query: a member is removed by its user, an API key revoked by `id`.
    ("add_member", "remove_member"): {"query.userId": "$response.body#/member/userId"},
    ("create_api_key", "revoke_api_key"): {"query.id": "$response.body#/apiKey/id"},
}


class _DocJsonSchema(GenerateJsonSchema):
    """Property titles only repeat the property names."""

    def field_title_should_be_set(self, schema) -> bool:
        return False


def _with_rest_keywords(value: Any) -> Any:
    """`value` with every `x-rest` (`tools.core.fields.RestSchema`) merged into the schema that holds it."""
    if isinstance(value, list):
        return [_with_rest_keywords(item) for item in value]
    if not isinstance(value, dict):
        return value
    merged = {key: _with_rest_keywords(item) for key, item in value.items() if key != REST_SCHEMA}
    return {**merged, **value.get(REST_SCHEMA, {})}


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A URL parameter is present or absent, never null: `anyOf [T, null]` -> `T`."""
    members = schema.get("anyOf")
    if not members or _NULL not in members:
        return schema
    rest = [member for member in members if member != _NULL]
    outer = {
        key: value
        for key, value in schema.items()
        if key != "anyOf" and not (key == "default" and value is None)
    }
    return {**outer, **rest[0]} if len(rest) == 1 else {**outer, "anyOf": rest}


def _parameter(name: str, where: str, schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    schema = dict(_not_null(schema))
    description = schema.pop("description", None)
    parameter: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if schema.get("type") == "array":  # one comma-separated value, as `server.rest` reads it
        parameter.update(style="form", explode=False)
    if description:
        parameter["description"] = description
    return parameter


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class _Builder:
    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.endpoints = endpoints
        pairs = []
        for endpoint in endpoints:
            pairs += [(endpoint.input_model, "validation"), (endpoint.output_model, "serialization")]
        self.refs, definitions = models_json_schema(
            pairs, by_alias=True, ref_template=_REF, schema_generator=_DocJsonSchema
        )
        self.schemas: dict[str, Any] = _with_rest_keywords(dict(definitions.get("$defs", {})))

    def _definition(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        ref = self.refs[(model, mode)]["$ref"]
        return self.schemas[ref.rsplit("/", 1)[1]]

    def operation(self, endpoint: Endpoint) -> dict[str, Any]:
        definition = self._definition(endpoint.input_model, "validation")
        properties: dict[str, Any] = definition.get("properties", {})
        required = set(definition.get("required", []))
        missing = set(endpoint.path_params) - set(properties)
        if missing:
            raise ValueError(f"{endpoint.name}: path parameters {sorted(missing)} are not input fields")
        parameters = [
            _parameter(name, "path", properties[name], required=True) for name in endpoint.path_params
        ]
        rest = {name: schema for name, schema in properties.items() if name not in endpoint.path_params}
        description = endpoint.description
        if endpoint.input_rules:
            description += (
                "\n\n"
                + _RULES_INTRO
                + "".join(
                    f"\n- {rule.text} ({rule.error.status} {rule.error.code})"
                    for rule in endpoint.input_rules
                )
            )
        operation: dict[str, Any] = {
            "operationId": endpoint.name,
            "summary": endpoint.title,
            "description": description,
            "tags": [endpoint.tag],
        }
        if endpoint.takes_body:
            if rest:
                body_name = f"{_pascal(endpoint.name)}Body"
                body: dict[str, Any] = {"type": "object", "properties": rest, "additionalProperties": False}
                body_required = sorted(required & set(rest), key=list(rest).index)
                if body_required:
                    body["required"] = body_required
                if "not" in definition:  # between body fields: `tools.core.fields.exactly_one_of`
                    body["not"] = definition["not"]
                self.schemas[body_name] = body
                operation["requestBody"] = {
                    "required": bool(body_required),
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model=body_name)}}},
                }
        else:
            parameters += [
                _parameter(name, "query", schema, required=name in required) for name, schema in rest.items()
            ]
        if endpoint.takes_idempotency_key:
            parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
        if parameters:
            operation["parameters"] = parameters
        output = self.refs[(endpoint.output_model, "serialization")]
        operation["responses"] = {
            str(endpoint.status): {
                "description": endpoint.title,
                "content": {"application/json": {"schema": output}},
            },
            **{
                str(status): {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
                for status in endpoint.errors
            },
        }
        for status in sorted({rule.error.status for rule in endpoint.input_rules}):
            # The shared response, with the rules this status answers here named.
            ruled = [rule for rule in endpoint.input_rules if rule.error.status == status]
            operation["responses"][str(status)] = _ruled_response(status, ruled)
        if endpoint.permission is not None:
            operation[PERMISSION] = endpoint.permission
        if endpoint.input_rules:
            operation[INPUT_RULES] = [
                {"rule": rule.text, "status": rule.error.status} for rule in endpoint.input_rules
            ]
        _refuse_nul(operation, self.schemas)
        operation["security"] = _SECURITY[endpoint.auth]
        return operation

    def links(self, created: Endpoint) -> dict[str, Any]:
        """OpenAPI links from a create's answer to the operations that take the id it made (and the
        ids of its own path): `POST /courses/{courseId}/sections` -> `sectionId` of
        `PATCH /courses/{courseId}/sections/{sectionId}`. Clients and stateful testers (schemathesis)
        follow them to real resources."""
        links: dict[str, Any] = {}
        for name, field in created.output_model.model_fields.items():
            model = field.annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel) and "id" in model.model_fields):
                continue
            alias = field.alias or name
            made = f"$response.body#/{alias}/id"
            for target in self.endpoints:
                parameters = dict(_QUERY_LINKS.get((created.name, target.name), {}))
                if f"{alias}Id" in target.path_params and set(target.path_params) <= {
                    *created.path_params,
                    f"{alias}Id",
                }:
                    parameters[f"path.{alias}Id"] = made
                if not parameters or target is created:
                    continue
                for other in target.path_params:
                    parameters.setdefault(f"path.{other}", f"$request.path.{other}")
                links[target.name] = {"operationId": target.name, "parameters": parameters}
        return links

    def document(self, *, version: str) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        for endpoint in self.endpoints:
            operation = self.operation(endpoint)
            if endpoint.status == 201 and (links := self.links(endpoint)):
                operation["responses"]["201"]["links"] = links
            paths.setdefault(API_PREFIX + endpoint.path, {})[endpoint.method.lower()] = operation
        self.schemas["Error"] = {
            "type": "object",
            "properties": {
                "error": {"type": "string", "enum": [error.code for _, error, _ in _ERRORS.values()]},
                "message": {
                    "type": "string",
                    "description": "A human sentence; for bad_request it names the fields.",
                },
                "retryAfter": {"type": "integer", "description": "rate_limited and busy: seconds to wait."},
            },
            "required": ["error", "message"],
        }
        document = {
            "openapi": "3.1.0",
            "info": {
                "title": "Blohko API",
                "version": version,
                "description": (
                    "Courses, students, enrollments and communities. The same operations are MCP tools at /mcp. "
                    "Every request the schemas allow is accepted (400 answers only requests they do not allow), "
                    "except where an operation's description states a rule JSON Schema cannot (an order between "
                    "two dates, an id that must exist, a host that must resolve to public addresses): a request "
                    "breaking it is answered with the status the rule names and the operation lists, 422 "
                    "unprocessable unless 404 or 409 says more. No text holds NUL (U+0000): every text's schema "
                    "says so (a `pattern` that leaves it out, or `not` a text holding it). Request bodies are "
                    "UTF-8 JSON: no unpaired surrogate (400)."
                ),
            },
            "paths": paths,
            "components": {
                "schemas": self.schemas,
                "responses": _error_responses(),
                "parameters": {"IdempotencyKey": _IDEMPOTENCY_KEY},
                "securitySchemes": {
                    "apiKey": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "blk_...",
                        "description": "An API key.",
                    },
                    "sessionToken": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "bls_...",
                        "description": "A producer session token from POST /api/v1/auth/login.",
                    },
                    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "blohko_session"},
                },
            },
            "security": _SECURITY["api_key"],
        }
        _drop_unused_schemas(document)
        return document


def _ruled_response(status: int, rules: list[InputRule]) -> dict[str, Any]:
    _, error, description = _ERRORS[status]
    texts = " ".join(rule.text for rule in rules)
    return {
        "description": f"{description} Here, when the input breaks a rule beyond its schema: {texts}",
        "content": {
            "application/json": {
                "schema": {"$ref": _REF.format(model="Error")},
                "example": {"error": error.code, "message": rules[0].text},
            }
        },
    }


def _is_text(schema: dict[str, Any]) -> bool:
    """A string schema any text might fill: not an enum, a constant or a date-time."""
    kind = schema.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    return is_string and not ({"enum", "const"} & set(schema)) and schema.get("format") != "date-time"


def _whole_text(pattern: str) -> bool:
    """`pattern` describes the whole text (`^...$`), not only a part of it (`[^ ]`: a part not blank)."""
    return pattern.startswith("^") and pattern.endswith("$")


def _refuse_nul(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Every text of `operation`'s input (parameters, body, the models they use) states that it
    holds no NUL: `"not": _HOLDS_NUL`, unless a pattern of its own, anchored at both ends, already
    leaves NUL out (`tools.core.fields.whitespace_class`; the tests check every such pattern)."""
    seen: set[str] = set()

    def visit(schema: Any) -> None:
        if isinstance(schema, list):
            for item in schema:
                visit(item)
            return
        if not isinstance(schema, dict):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                visit(schemas[name])
        if _is_text(schema) and not _whole_text(schema.get("pattern", "")):
            schema["not"] = dict(_HOLDS_NUL)
        for key in ("properties", "patternProperties"):
            for item in schema.get(key, {}).values():
                visit(item)
        for key in ("items", "additionalProperties", "prefixItems", "anyOf", "oneOf", "allOf", "not"):
            visit(schema.get(key))

    for parameter in operation.get("parameters", []):
        visit(parameter.get("schema"))
    for content in operation.get("requestBody", {}).get("content", {}).values():
        visit(content["schema"])


def _error_responses() -> dict[str, Any]:
    responses = {}
    for name, error, description in _ERRORS.values():
        response: dict[str, Any] = {
            "description": description,
            "content": {
                "application/json": {
                    "schema": {"$ref": _REF.format(model="Error")},
                    "example": {"error": error.code, "message": description},
                }
            },
        }
        if error is Unauthorized:
            response["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "The Bearer challenge."}
            }
        if error is RateLimited or error is Busy:
            response["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
            }
        responses[name] = response
    return responses


def _references(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _drop_unused_schemas(document: dict[str, Any]) -> None:
    """Input models are split into parameters and bodies; their whole definitions are not referenced."""
    schemas = document["components"]["schemas"]
    used: set[str] = set()
    pending = list(_references(document["paths"])) + list(_references(document["components"]["responses"]))
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending.extend(_references(schemas[name]))
    document["components"]["schemas"] = {name: schemas[name] for name in sorted(used)}


def openapi_document(endpoints: Iterable[Endpoint], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing `endpoints`."""
    return _Builder(list(endpoints)).document(version=version)
