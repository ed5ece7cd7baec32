"""How an operation appears in `tools/list`: what an agent needs, and nothing it pays for twice.

Every agent pays for `tools/list` in context, on every conversation; docs/tools.md ("Context
budget") states its size, and a test holds it under 26 KB. So a tool is
published with its name, description, trimmed input schema and hints, and without:

- an output schema (it would more than double the list): results still carry
  `structuredContent`, built from the typed output model, and `Operation.output_schema` still
  generates the schema for the REST API's documentation;
- a display title (clients fall back to the name; the catalog keeps titles for REST docs).

A tool whose result an MCP Apps view renders also carries `_meta.ui.resourceUri` (`server.views`).

The input model validates every argument in full and names the offending field
in a `bad_request`, so nothing trimmed from the schema loosens validation:

- `additionalProperties: false`: unknown fields are refused all the same;
- `anyOf [X, null]` of an optional field becomes X, unless its description says what null
  does there (`null clears it.`); elsewhere (a create's or a filter's optional field) null
  means "omitted". An update's field that null cannot clear offers no null to begin with
  (`tools.core.updates`);
- defaults that only say "absent" (null, false, empty list), length limits (`maxLength`, `maxItems`),
  and bounds no agent comes near (`minLength` 1, `minimum` 0, `maximum` of a million and more);
- what only the REST API's OpenAPI document states (`tools.core.fields.RestSchema`: patterns,
  formats, the event types' enum);
- a nested model's `$defs` entry and `$ref` where one place uses it: it is written there instead
  (a model used in two places, or a tree, stays one shared definition);
- what `CONVENTIONS` explains once for every tool: `page`, `limit` and `updatedAfter` (and a list's "Paginated."),
  the date-time format of times,
  "null clears it.", and what a create's `idempotencyKey` does (published bare: a string).

`Operation.input_schema` itself stays complete, for the REST API's documentation.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from mcp_types import ToolAnnotations

from server.published_tools import CONVENTIONS
from server.views import tool_view_meta
from tools.core.catalog import Operation
from tools.core.fields import REST_SCHEMA
from tools.core.models import UPDATED_AFTER
from tools.core.permissions import requirement_json
from tools.core.runner import IDEMPOTENCY_ARGUMENT

__all__ = [
    "CONVENTIONS",
    "published_annotations",
    "published_description",
    "published_input_schema",
    "published_tool_file",
]

_NULL = {"type": "null"}
_NULL_MEANS_SOMETHING = re.compile(r"\bnull\b")
_EXPLAINED_DESCRIPTIONS = frozenset({"null clears it.", UPDATED_AFTER})
_PAGINATION = frozenset({"page", "limit"})
_LENGTH_LIMIT = re.compile(r"Max \d+ characters\.")
_HUGE_NUMBER = 1_000_000
_DEF_REF = "#/$defs/"


def published_tool_file(operations: tuple[Operation, ...]) -> str:
    """The text of `server/published_tools.json` for the catalog's MCP tools `operations`
    (`server.published_tools` serves `tools/list` from it, without loading the catalog)."""
    entries = [
        {
            "name": op.name,
            "description": published_description(op),
            "inputSchema": published_input_schema(op),
            "annotations": published_annotations(op).model_dump(by_alias=True, exclude_none=True),
            **({"_meta": meta} if (meta := tool_view_meta(op.name)) else {}),
            "permission": requirement_json(op.permission),
            "auth": sorted(op.auth),
        }
        for op in operations
    ]
    return json.dumps({"tools": entries}, indent=1, ensure_ascii=False) + "\n"


def published_description(op: Operation) -> str:
    """The description on one line (docstring line breaks carry no meaning for an agent), without
    the "Paginated." that `CONVENTIONS` says once for every list tool."""
    text = " ".join(op.description.split())
    return text.replace(" Paginated.", "") if "page" in op.input_model.model_fields else text


def published_annotations(op: Operation) -> ToolAnnotations:
    """Every hint, each either given or the MCP default that reads the same, falsy included.

    Given always: `openWorldHint` (its default is true) and, for a tool that writes,
    `destructiveHint` (default true, so a reader that takes a missing hint as false would
    misread it). Left to their defaults: `readOnlyHint` false, `idempotentHint` false, and
    the destructive and idempotent hints of a read-only tool, which MCP defines only for
    tools that write.
    """
    writes = not op.read_only
    return ToolAnnotations(
        read_only_hint=True if op.read_only else None,
        destructive_hint=op.destructive if writes else None,
        idempotent_hint=True if writes and op.idempotent else None,
        open_world_hint=op.open_world,
    )


def published_input_schema(op: Operation) -> dict[str, Any]:
    """A trimmed copy of the operation's input JSON schema, with a create's `idempotencyKey`
    (which `CONVENTIONS` explains: the runner takes it out before the input model sees the rest)."""
    schema = op.input_schema
    published = _object(schema)
    if op.takes_idempotency_key:
        published["properties"] = {
            **published.get("properties", {}),
            IDEMPOTENCY_ARGUMENT: {"type": "string"},
        }
    if "$defs" in schema:
        published["$defs"] = {name: _object(definition) for name, definition in schema["$defs"].items()}
    return _inline_single_use_definitions(published)


def _inline_single_use_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each `$defs` entry that one `$ref` names written in that place instead: a
    nested model used once (a course's `sections`, a section's `lessons`) costs its name twice
    and a `$ref` as a definition, and says nothing more. A definition named twice or more, or
    by itself (a tree), stays shared."""
    definitions = schema.get("$defs", {})
    uses = Counter(_refs(schema))
    inlined = {
        name
        for name in definitions
        if uses[_DEF_REF + name] == 1 and _DEF_REF + name not in _refs(definitions[name])
    }

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref", "")
        if ref.startswith(_DEF_REF) and ref.removeprefix(_DEF_REF) in inlined:
            rest = {key: value for key, value in node.items() if key != "$ref"}
            return resolve({**definitions[ref.removeprefix(_DEF_REF)], **rest})
        return {key: resolve(value) for key, value in node.items() if key != "$defs"}

    result = resolve(schema)
    shared = {name: resolve(definition) for name, definition in definitions.items() if name not in inlined}
    if shared:
        result["$defs"] = shared
    return result


def _refs(node: Any) -> list[str]:
    """Every `$ref` in `node`, once per place it is written."""
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    if not isinstance(node, dict):
        return []
    own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return own + [ref for value in node.values() for ref in _refs(value)]


def _object(schema: dict[str, Any]) -> dict[str, Any]:
    # The tool's description describes it; a model's docstring would only repeat or mislead.
    dropped = (
        "additionalProperties",
        "$defs",
        "description",
        REST_SCHEMA,
    )  # REST_SCHEMA: a model's `exactly_one_of`
    published = {key: value for key, value in schema.items() if key not in dropped}
    if "properties" in schema:
        published["properties"] = {name: _property(name, sub) for name, sub in schema["properties"].items()}
    return published


def _property(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    result = dict(schema)
    description = result.get("description", "")
    branches = result.get("anyOf")
    if (
        isinstance(branches, list)
        and len(branches) == 2
        and _NULL in branches
        and not _NULL_MEANS_SOMETHING.search(description)
    ):
        (kept,) = [branch for branch in branches if branch != _NULL]
        del result["anyOf"]
        result = {**kept, **result}
    if "default" in result and _says_absent(result["default"]):
        del result["default"]
    if description in _EXPLAINED_DESCRIPTIONS or _LENGTH_LIMIT.fullmatch(description):
        del result["description"]  # a length limit no agent comes near, like maxLength
    if name in _PAGINATION:
        result = {"type": result["type"]}
    return _type_or_null(_without_limits(result))


def _type_or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf [{type: X}, {type: null}]` (a field null clears) as the shorter, equal `type: [X, "null"]`."""
    branches = schema.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and _NULL in branches:
        (kept,) = [branch for branch in branches if branch != _NULL]
        if set(kept) == {"type"} and isinstance(kept["type"], str):
            result = {key: value for key, value in schema.items() if key != "anyOf"}
            return {"type": [kept["type"], "null"], **result}
    return schema


def _says_absent(value: Any) -> bool:
    return value is None or value is False or value == [] or value == {}


def _without_limits(schema: dict[str, Any]) -> dict[str, Any]:
    result = {
        key: value for key, value in schema.items() if key not in ("maxLength", "maxItems", REST_SCHEMA)
    }
    if result.get("minLength") == 1:
        del result["minLength"]
    if result.get("maximum", 0) >= _HUGE_NUMBER:
        del result["maximum"]
    if result.get("minimum") == 0:
        del result["minimum"]
    if result.get("format") == "date-time":  # CONVENTIONS: times are ISO 8601 texts
        del result["format"]
    if isinstance(result.get("anyOf"), list):
        result["anyOf"] = [_without_limits(branch) for branch in result["anyOf"]]
    if isinstance(result.get("items"), dict):
        result["items"] = _without_limits(result["items"])
    return result
