"""The OpenAPI 3.1 document of /api/v1: valid, complete, and true to what the API answers (schemathesis)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import TypeAdapter, ValidationError
from schemathesis import engine
from schemathesis.engine import events
from schemathesis.python.asgi import shutdown_lifespans
from starlette.types import Receive, Scope, Send

from server.http_app import api_document
from server.openapi import INPUT_RULES
from storage.engine import open_store
from storage.ids import utcnow
from tests.factories import make_tenant
from tests.rest_support import http_app, rest_client, seed
from tests.schemathesis_hooks import (
    RULE_REFUSALS,  # also registers the hook that knows these refusals
)
from tools.core.fields import NOT_BLANK_PATTERN, SLUG_PATTERN, Title, slug
from tools.core.models import WEB_URL_PATTERN, WebUrl
from tools.domains.sessions import login
from tools.domains.students import EMAIL_PATTERN, Email
from tools.registry import TOOLS, served_over


@pytest.mark.anyio
async def test_the_document_is_served_without_a_key_and_validates_as_openapi_3_1(app):
    async with rest_client(app) as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(document).validate()


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


OPERATIONS_ALSO = [also for op in served_over("rest") for also in op.http_also]


def test_every_operation_served_over_rest_is_documented_at_its_route():
    documented = {operation["operationId"]: route for route, operation in _operations(api_document()).items()}
    expected = {op.name: (op.http_method, "/api/v1" + op.http_path) for op in served_over("rest")}
    # An operation's other paths (a thread list across communities) are documented under their own ids.
    expected |= {name: (op.http_method, "/api/v1" + path) for op in served_over("rest") for path, name in op.http_also}
    assert documented == expected
    assert {name for _, name in OPERATIONS_ALSO} == {"list_threads_of_all_communities", "list_comments_of_community"}


def test_success_statuses_and_errors_are_documented_per_operation():
    operations = _operations(api_document())
    for op in TOOLS:
        responses = operations[(op.http_method, "/api/v1" + op.http_path)]["responses"]
        assert str(op.http_status) in responses and not ({"200", "201"} - {str(op.http_status)}) & set(responses), op.name
        assert {"400", "401", "500"} <= set(responses), op.name
        assert ("403" in responses) is (op.permission is not None), op.name
        if op.path_params:
            assert "404" in responses, op.name
        assert ("409" in responses) is (not op.read_only), op.name


def test_list_query_parameters_are_typed_integers():
    list_courses = _operations(api_document())[("GET", "/api/v1/courses")]
    parameters = {parameter["name"]: parameter for parameter in list_courses["parameters"]}
    assert parameters["page"]["schema"]["type"] == parameters["limit"]["schema"]["type"] == "integer"
    assert (parameters["limit"]["schema"]["minimum"], parameters["limit"]["schema"]["maximum"]) == (1, 100)
    assert parameters["status"]["schema"]["enum"] == ["published", "draft", "all"]
    assert all(parameter["in"] == "query" and not parameter["required"] for parameter in parameters.values())


def test_shared_models_are_defined_once_and_bodies_refuse_unknown_fields():
    document = api_document()
    schemas = document["components"]["schemas"]
    assert {"Error", "Pagination", "CoursePublic", "LessonPublic"} <= set(schemas)
    create_course = _operations(document)[("POST", "/api/v1/courses")]["requestBody"]["content"]["application/json"]
    body = schemas[create_course["schema"]["$ref"].rsplit("/", 1)[1]]
    assert body["additionalProperties"] is False and body["required"] == ["title", "slug", "categoryId"]
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "blk_...", "description": "An API key.",
    }  # fmt: skip


# ---- schemathesis against the app


class _ServedApp:
    """The HTTP app with its store opened in the ASGI lifespan, on the event loop that serves it.

    schemathesis serves the app on its own thread and loop; a store opened on the test's loop
    could not be used there."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.app = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with open_store(self.database_url) as store:
                # schemathesis sends `Host: testserver` (Starlette's test client): allowed like a public host.
                self.app = http_app(store, allowed_hosts=["testserver"])
                await self.app(scope, receive, send)  # runs the app's own lifespan until shutdown
            return
        await self.app(scope, receive, send)


_SEEDED_SETS = 3


async def _seeded(database_url: str) -> dict[str, Any]:
    """A tenant with three sets of everything and its key; two sessions (one for logout to end) of
    another tenant, whose keys the fuzzer may revoke without locking itself out."""
    async with open_store(database_url) as store:
        tenant = await make_tenant(store, name="Fuzzed Academy", permissions=["*"])
        sets = [(await seed(store, tenant)).ids for _ in range(_SEEDED_SETS)]
        owner = await make_tenant(store, name="Key Managing Academy", permissions=["courses:read"])
        sessions = [
            (await login(store, email=owner.owner_email, password=owner.owner_password, clock=utcnow)).token
            for _ in range(2)
        ]
    return {"key": tenant.key, "sessions": sessions, "sets": sets, "owner": tenant.owner_user_id}


EXAMPLES = int(os.environ.get("BLOHKO_SCHEMATHESIS_EXAMPLES", "6"))
SEEDS = [int(seed) for seed in os.environ.get("BLOHKO_SCHEMATHESIS_SEEDS", "20261127").split(",")]
"""CI runs one seed at a few examples an operation; the longer run (README, "REST API") sets both."""


def _ruled_operations(document: dict[str, Any]) -> list[str]:
    """The operations whose input has rules beyond its schema (`x-input-rules`): a 400 naming the
    rule is a documented answer to a request the schema allows."""
    return sorted(operation["operationId"] for operation in _operations(document).values() if INPUT_RULES in operation)


def _config(seeded: dict[str, Any], *, seed: int) -> schemathesis.Config:
    ids = seeded["sets"][0]
    user_ids = [ids["studentId"], ids["otherStudentId"], seeded["owner"]]
    half = {"probability": 0.5}
    return schemathesis.Config.from_dict(
        {
            "seed": seed,
            # No NUL in generated text: the document's introduction says every text refuses it
            # (PostgreSQL cannot store it), which JSON Schema has no short way to state per field.
            "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none", "allow-x00": False},
            # No replay of requests cached in ./.schemathesis by earlier runs: each run is the same,
            # and runs side by side (the SQLite and PostgreSQL passes) share no file.
            "cache": {"enabled": False},
            # Every check, the stateful phase too: it follows the document's links from each create to
            # the operations that take the id it made.
            "checks": {"enabled": True},
            "phases": {"stateful": {"enabled": True, "max-steps": 6}},
            "auth": {
                "openapi": {"apiKey": {"bearer": seeded["key"]}, "sessionToken": {"bearer": seeded["sessions"][0]}}
            },
            "operations": [
                # Logging out ends its session: the other endpoints keep theirs.
                {
                    "include-name": "POST /api/v1/auth/logout",
                    "headers": {"Authorization": f"Bearer {seeded['sessions'][1]}"},
                },
                # Deletes do not reuse ids seen in earlier responses, so the seeded data lives through the run.
                {
                    "include-method": "DELETE",
                    "phases": {
                        phase: {"extra-data-sources": {"responses": False}} for phase in ("examples", "coverage", "fuzzing")
                    },
                },
            ],
            "dictionaries": {
                "userIds": {"values": user_ids},
                "commentIds": {"values": [ids["commentId"]]},
                "categoryIds": {"values": ["cat_web_development", "cat_design"]},
            },
            "parameters": {
                "body.userId": {"dictionary": "userIds", **half},
                "query.userId": {"dictionary": "userIds", **half},
                "body.parentId": {"dictionary": "commentIds", **half},
                "body.categoryId": {"dictionary": "categoryIds", **half},
            },
        }
    )


def test_every_operation_with_rules_beyond_its_schema_has_its_refusals_known():
    assert sorted(RULE_REFUSALS) == _ruled_operations(api_document())


def _real_ids_half_the_time(schema: schemathesis.BaseSchema, sets: list[dict[str, str]]) -> None:
    """Half the generated requests address a seeded resource (all path ids from one set), the other
    half random ids (404s). Deletes keep random ids, so the seeded data lives through the run."""

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        if not path_parameters or context.operation.method.upper() == "DELETE":
            return st.just(path_parameters)
        real = [{**path_parameters, **{name: ids[name] for name in path_parameters if name in ids}} for ids in sets]
        return st.sampled_from([path_parameters, *real])


@pytest.fixture(params=SEEDS, ids=lambda seed: f"seed{seed}")
def fuzzed_api(database_url: str, request) -> Iterator[schemathesis.BaseSchema]:
    seeded = anyio.run(_seeded, database_url)
    config = _config(seeded, seed=request.param)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _ServedApp(database_url), config=config)
    _real_ids_half_the_time(schema, seeded["sets"])
    yield schema
    shutdown_lifespans()


def test_schemathesis_finds_no_failure_of_any_check_in_any_phase(fuzzed_api):
    """Every check (valid requests accepted, invalid ones refused, no server error, answers as
    documented, created resources readable, deleted ones gone) in every phase (examples,
    coverage, fuzzing, stateful), bounded and seeded.

    Run through schemathesis' engine, as its CLI does: its pytest plugin's fixture loader
    does not run on this pytest."""
    failures, errors, tested = [], [], set()
    for event in engine.from_schema(fuzzed_api).execute():
        if isinstance(event, events.ScenarioFinished):
            tested.add(event.recorder.label)
            for checks in event.recorder.checks.values():
                failures += [
                    f"{event.recorder.label}: {check.name}: {check.failure_info.failure.title}\n"
                    f"{check.failure_info.failure.message}\n{check.failure_info.code_sample}"
                    for check in checks
                    if check.failure_info is not None
                ]
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            assert event.stop_reason == "completed"
    assert not errors, "\n".join(errors)
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    every_route = {f"{method} {path}" for method, path in _operations(api_document())}
    assert every_route <= tested, sorted(every_route - tested)  # the other paths too; and the stateful scenarios


# ---- the document's patterns are the validators' rules


def _field_accepts(annotation: Any, value: str) -> bool:
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError:
        return False
    return True


PATTERNED = [
    pytest.param(WebUrl, WEB_URL_PATTERN, id="url"),
    pytest.param(Email, EMAIL_PATTERN, id="email"),
    pytest.param(slug(200), SLUG_PATTERN, id="slug"),
    pytest.param(Title, NOT_BLANK_PATTERN, id="title"),
]


@pytest.mark.parametrize(("annotation", "pattern"), PATTERNED)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_pattern_of_the_document_accepts_exactly_what_its_field_accepts(annotation, pattern, data):
    """Texts made to match the pattern pass the validator; any text passes it only if it matches
    (within the length limits the document states beside the pattern)."""
    matching = data.draw(st.from_regex(pattern, fullmatch=pattern.startswith("^")).filter(lambda text: 0 < len(text) <= 200))
    assert _field_accepts(annotation, matching), matching
    anything = data.draw(st.text(min_size=1, max_size=60) | st.sampled_from(["http://a b", "https://[::1]/", "a@b.c", "x-y"]))
    assert _field_accepts(annotation, anything) is (re.search(pattern, anything) is not None), anything


@pytest.mark.anyio
async def test_a_whole_number_with_a_fraction_part_of_zero_is_an_integer_as_json_schema_says(store, tenant, app):
    ids = (await seed(store, tenant)).ids
    path = f"/courses/{ids['courseId']}/sections/{ids['sectionId']}"
    async with rest_client(app, tenant.key) as http:
        whole = await http.patch(path, json={"order": 0.0})
        fraction = await http.patch(path, json={"order": 0.5})
        boolean = await http.patch(path, json={"order": False})
    assert whole.status_code == 200 and whole.json()["section"]["order"] == 0
    assert fraction.json() == {"error": "bad_request", "message": "Invalid input: order: Input should be a valid integer"}
    assert boolean.json() == {"error": "bad_request", "message": "Invalid input: order: Input should be a valid integer"}
