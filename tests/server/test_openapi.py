"""The OpenAPI 3.1 document of /api/v1: valid, complete, and true to what the API answers (schemathesis)."""

from __future__ import annotations

import os
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import ValidationError, create_model
from schemathesis import engine
from schemathesis.engine import events
from schemathesis.python.asgi import shutdown_lifespans
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from server.http_app import api_document
from server.openapi import INPUT_RULES, PERMISSION
from storage.engine import open_store
from storage.ids import utcnow
from tests.support.factories import make_tenant
from tests.support.rest import http_app, rest_client, rest_route, seed
from tools.core.fields import NOT_BLANK_PATTERN, SLUG_PATTERN, Title
from tools.core.models import WEB_URL_PATTERN, InputModel, WebUrl
from tools.core.permissions import requirement_json
from tools.domains.courses import Slug
from tools.domains.sign_ins import login
from tools.domains.students import EMAIL_PATTERN, Email
from tools.registry import TOOLS, served_over


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
    expected = {
        op.name: (method, "/api/v1" + path) for op in served_over("rest") for method, path in [rest_route(op)]
    }
    # An operation's other paths (a thread list across communities) are documented under their own ids.
    expected |= {
        name: (op.http_method, "/api/v1" + path) for op in served_over("rest") for path, name in op.http_also
    }
    assert documented == expected
    assert {name for _, name in OPERATIONS_ALSO} == {
        "list_threads_of_all_communities",
        "list_comments_of_community",
    }


def test_success_statuses_and_errors_are_documented_per_operation():
    operations = _operations(api_document())
    for op in TOOLS:
        method, path = rest_route(op)
        responses = operations[(method, "/api/v1" + path)]["responses"]
        assert str(op.http_status) in responses and not ({"200", "201"} - {str(op.http_status)}) & set(
            responses
        ), op.name
        assert {"400", "401", "500"} <= set(responses), op.name
        assert ("403" in responses) is (op.permission is not None), op.name
        if op.path_params:
            assert "404" in responses, op.name
        assert ("409" in responses) is (not op.read_only), op.name


def test_each_operation_states_the_permission_it_needs():
    operations = _operations(api_document())
    for op in TOOLS:
        method, path = rest_route(op)
        assert operations[(method, "/api/v1" + path)].get(PERMISSION) == requirement_json(op.permission), (
            op.name
        )
    assert operations[("GET", "/api/v1/courses/{courseId}/insights")][PERMISSION] == {
        "allOf": ["courses:read", "enrollments:read"]
    }
    assert operations[("GET", "/api/v1/courses")][PERMISSION] == "courses:read"
    assert PERMISSION not in operations[("GET", "/api/v1/whoami")]


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
    create_course = _operations(document)[("POST", "/api/v1/courses")]["requestBody"]["content"][
        "application/json"
    ]
    body = schemas[create_course["schema"]["$ref"].rsplit("/", 1)[1]]
    assert body["additionalProperties"] is False and body["required"] == ["title", "slug", "categoryId"]
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "blk_...",
        "description": "An API key.",
    }


def test_every_model_has_a_name_of_its_own():
    """Two models of one name (`Period` in two modules) would be published under their module's
    path (`tools__domains__insights__Period`), which client generators refuse as a duplicate."""
    qualified = [name for name in api_document()["components"]["schemas"] if "__" in name]
    assert qualified == [], "rename the models so that each name is one model's"


# ---- schemathesis against the app


class _ServedApp:
    """The HTTP app with its store opened in the ASGI lifespan, on the event loop that serves it.

    schemathesis serves the app on its own thread and loop; a store opened on the test's loop
    could not be used there."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with open_store(self.database_url) as store:
                # schemathesis sends `Host: testserver` (Starlette's test client): allowed like a public host.
                self.app = http_app(store, allowed_hosts=["testserver"])
                await self.app(scope, receive, send)  # runs the app's own lifespan until shutdown
            return
        assert self.app is not None, "the ASGI lifespan, which opens the app, runs before any request"
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


EXPECTED_FOR_VALID_DATA = tomllib.loads((Path(__file__).parents[2] / "schemathesis.toml").read_text())[
    "checks"
]["positive_data_acceptance"]["expected-statuses"]
"""What the repository's schemathesis.toml lets answer a request the document allows (the CLI reads
it from the root): 422 for a rule beyond the schema among them, and never 400."""


def _config(seeded: dict[str, Any], *, seed: int) -> schemathesis.Config:
    ids = seeded["sets"][0]
    user_ids = [ids["studentId"], ids["otherStudentId"], seeded["owner"]]
    half = {"probability": 0.5}
    return schemathesis.Config.from_dict(
        {
            "seed": seed,
            # NUL in generated text too: every text of the document states it holds none.
            "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
            # No replay of requests cached in ./.schemathesis by earlier runs: each run is the same,
            # and runs side by side (the SQLite and PostgreSQL passes) share no file.
            "cache": {"enabled": False},
            # Every check, the stateful phase too: it follows the document's links from each create to
            # the operations that take the id it made.
            "checks": {
                "enabled": True,
                "positive_data_acceptance": {"expected-statuses": EXPECTED_FOR_VALID_DATA},
            },
            "phases": {"stateful": {"enabled": True, "max-steps": 6}},
            "auth": {
                "openapi": {
                    "apiKey": {"bearer": seeded["key"]},
                    "sessionToken": {"bearer": seeded["sessions"][0]},
                }
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
                        phase: {"extra-data-sources": {"responses": False}}
                        for phase in ("examples", "coverage", "fuzzing")
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


def test_valid_data_may_meet_a_rule_beyond_the_schema_but_never_a_400():
    assert (
        "422" in EXPECTED_FOR_VALID_DATA
        and "400" not in EXPECTED_FOR_VALID_DATA
        and "4xx" not in EXPECTED_FOR_VALID_DATA
    )


def test_every_rule_beyond_the_schema_is_stated_and_answered_by_a_status_its_operation_lists():
    """The rules JSON Schema cannot state: each in the description, with a status of its
    own that the operation lists (not 400, which answers only what the schema refuses)."""
    ruled = {}
    for operation in _operations(api_document()).values():
        for rule in operation.get(INPUT_RULES, []):
            assert rule["status"] != 400 and str(rule["status"]) in operation["responses"], operation[
                "operationId"
            ]
            assert f"{rule['rule']} ({rule['status']} " in operation["description"], operation["operationId"]
            assert rule["rule"] in operation["responses"][str(rule["status"])]["description"], operation[
                "operationId"
            ]
            ruled.setdefault(operation["operationId"], set()).add(rule["status"])
    assert (
        ruled["list_threads"]
        == ruled["list_audit_events"]
        == ruled["create_webhook"]
        == ruled["parse_video"]
        == {422}
    )
    assert (
        ruled["create_course"] == {404, 422}
        and ruled["update_course"] == {404}
        and ruled["publish_course"] == {409}
    )
    assert not {"update_progress", "enroll_students"} & set(ruled)  # stated in the schema (`exactly_one_of`)


def _real_ids_half_the_time(schema: schemathesis.BaseSchema, sets: list[dict[str, str]]) -> None:
    """Half the generated requests address a seeded resource (all path ids from one set), the other
    half random ids (404s). Deletes keep random ids, so the seeded data lives through the run."""

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        if not path_parameters or context.operation.method.upper() == "DELETE":
            return st.just(path_parameters)
        real = [
            {**path_parameters, **{name: ids[name] for name in path_parameters if name in ids}}
            for ids in sets
        ]
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
    failures, errors, tested, answered = [], [], set(), defaultdict(set)
    for event in engine.from_schema(fuzzed_api).execute():
        if isinstance(event, events.ScenarioFinished):
            tested.add(event.recorder.label)
            for case_id, interaction in event.recorder.interactions.items():
                if interaction.response is not None:
                    answered[event.recorder.cases[case_id].value.operation.label].add(
                        interaction.response.status_code
                    )
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
    assert every_route <= tested, sorted(
        every_route - tested
    )  # the other paths too; and the stateful scenarios
    # The operations only a producer session may call ran with one: not only refused for want of it.
    by_session = {
        f"{method} {path}"
        for (method, path), operation in _operations(api_document()).items()
        if {"sessionToken": []} in operation["security"]
    }
    assert len(by_session) >= 7
    assert {route for route in by_session if answered[route] - {401, 403}} == by_session, {
        route: answered[route] for route in by_session
    }


# ---- the document's patterns are the validators' rules


def _field_accepts(annotation: Any, value: str) -> bool:
    """A field of this type in an input model takes `value` (an input model refuses NUL in any text)."""
    holder = create_model("Holder", __base__=InputModel, value=(annotation, ...))
    try:
        holder.model_validate({"value": value})
    except ValidationError:
        return False
    return True


def _whole_text(pattern: str) -> bool:
    return pattern.startswith("^") and pattern.endswith("$")


def _document_accepts(pattern: str, value: str) -> bool:
    """The document's rule for a text with `pattern`: it matches, and (as `"not": {"pattern":
    "\\u0000"}` beside a pattern that describes only a part of the text says) holds no NUL."""
    return re.search(pattern, value) is not None and (_whole_text(pattern) or "\x00" not in value)


PATTERNED = [
    pytest.param(WebUrl, WEB_URL_PATTERN, id="url"),
    pytest.param(Email, EMAIL_PATTERN, id="email"),
    pytest.param(Slug, SLUG_PATTERN, id="slug"),
    pytest.param(Title, NOT_BLANK_PATTERN, id="title"),
]


@pytest.mark.parametrize(("annotation", "pattern"), PATTERNED)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_pattern_of_the_document_accepts_exactly_what_its_field_accepts(annotation, pattern, data):
    """Texts made to match the pattern (without NUL) pass the validator; any text passes it only if
    the document allows it (within the length limits the document states beside the pattern)."""
    matching = data.draw(
        st.from_regex(pattern, fullmatch=pattern.startswith("^")).filter(
            lambda text: 0 < len(text) <= 200 and "\x00" not in text
        )
    )
    assert _field_accepts(annotation, matching), matching
    examples = [
        "http://a b",
        "https://[::1]/",
        "a@b.c",
        "x-y",
        "https://a.b/\x00",
        "a@b.c\x00",
        "x\x00y",
        "Title\x00",
    ]
    anything = data.draw(st.text(min_size=1, max_size=60) | st.sampled_from(examples))
    assert _field_accepts(annotation, anything) is _document_accepts(pattern, anything), anything


def _texts(schema: Any, schemas: dict[str, Any], seen: set[str]) -> Iterator[dict[str, Any]]:
    """Every string schema in `schema`, following references into `schemas`."""
    if isinstance(schema, list):
        for item in schema:
            yield from _texts(item, schemas, seen)
        return
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/") and ref not in seen:
        seen.add(ref)
        yield from _texts(schemas[ref.rsplit("/", 1)[1]], schemas, seen)
    if schema.get("type") == "string" or "string" in (schema.get("type") or []):
        yield schema
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            yield from _texts(list(value.values()), schemas, seen)
        elif key in ("items", "additionalProperties", "prefixItems", "anyOf", "oneOf", "allOf"):
            yield from _texts(value, schemas, seen)


def _request_texts(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    schemas = document["components"]["schemas"]
    for operation in _operations(document).values():
        seen: set[str] = set()
        for parameter in operation.get("parameters", []):
            if "$ref" in parameter:  # the Idempotency-Key header
                parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
            for text in _texts(parameter.get("schema"), schemas, seen):
                yield operation["operationId"], text
        for content in operation.get("requestBody", {}).get("content", {}).values():
            for text in _texts(content["schema"], schemas, seen):
                yield operation["operationId"], text


def test_every_text_a_request_carries_states_that_it_holds_no_nul():
    """The server refuses NUL in texts (search, title, content, password, thumbnailUrl), so the
    document says so of each text, unless it is an enum or a date-time, whose values hold none."""
    texts = list(_request_texts(api_document()))
    assert len(texts) > 100
    for operation, text in texts:
        if "enum" in text or "const" in text or text.get("format") == "date-time":
            continue
        states_it = text.get("not") == {"pattern": "\\u0000"} or _whole_text(text.get("pattern", ""))
        assert states_it, (operation, text)
        assert not Draft202012Validator(text).is_valid("a\x00b"), (operation, text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_pattern_that_describes_a_whole_text_leaves_nul_out(data):
    """Such a pattern stands alone for its text (no `not` beside it): a text it matches, with a NUL
    put anywhere, does not match."""
    patterns = sorted(
        {
            text["pattern"]
            for _, text in _request_texts(api_document())
            if _whole_text(text.get("pattern", ""))
        }
    )
    assert len(patterns) >= 4  # URLs, emails, slugs, the Idempotency-Key (and the event feed's cursor)
    pattern = data.draw(st.sampled_from(patterns))
    matching = data.draw(st.from_regex(pattern, fullmatch=True).filter(lambda text: len(text) <= 300))
    at = data.draw(st.integers(0, len(matching)))
    assert re.search(pattern, matching[:at] + "\x00" + matching[at:]) is None, (pattern, matching, at)


def _body_schema(operation_id: str) -> dict[str, Any]:
    document = api_document()
    (operation,) = [op for op in _operations(document).values() if op["operationId"] == operation_id]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return {**document["components"]["schemas"][ref.rsplit("/", 1)[1]], "components": document["components"]}


async def test_exactly_one_of_lesson_id_and_lesson_position_and_of_student_ids_and_emails_is_in_the_schema(
    store, tenant, app
):
    """ "Give lessonId or lessonPosition, exactly one" and "give studentIds or emails" are in the
    schema, and the server answers each body as the schema says: 400 exactly when the schema
    refuses it."""
    progress, bulk = (
        Draft202012Validator(_body_schema("update_progress")),
        Draft202012Validator(_body_schema("enroll_students")),
    )
    ids = (await seed(store, tenant)).ids
    answers = {}
    async with rest_client(app, tenant.key) as http:
        for body in (
            {"completed": True},
            {"completed": True, "lessonId": "x", "lessonPosition": 1},
            {"completed": True, "lessonPosition": 1},
        ):
            response = await http.patch(f"/enrollments/{ids['enrollmentId']}", json=body)
            answers[str(body)] = (progress.is_valid(body), response.status_code)
        for body in (
            {},
            {"studentIds": None, "emails": None},
            {"studentIds": ["a"], "emails": ["a@b.co"]},
            {"studentIds": None, "emails": ["a@b.co"]},
        ):
            response = await http.post("/enrollments/bulk", json={"courseId": ids["courseId"], **body})
            answers[str(body)] = (bulk.is_valid({"courseId": ids["courseId"], **body}), response.status_code)
    assert answers == {
        "{'completed': True}": (False, 400),
        "{'completed': True, 'lessonId': 'x', 'lessonPosition': 1}": (False, 400),
        "{'completed': True, 'lessonPosition': 1}": (True, 200),
        "{}": (False, 400),
        "{'studentIds': None, 'emails': None}": (False, 400),
        "{'studentIds': ['a'], 'emails': ['a@b.co']}": (False, 400),
        "{'studentIds': None, 'emails': ['a@b.co']}": (True, 200),
    }


async def test_rules_beyond_the_schema_are_answered_with_their_documented_status_not_400(store, tenant, app):
    """Requests the schema allows but a rule refuses: each answered with the status its operation
    lists for the rule its description states."""
    ids = (await seed(store, tenant)).ids
    async with rest_client(app, tenant.key) as http:
        backwards = {"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}
        threads = await http.get("/threads", params=backwards)
        audit = await http.get("/audit-events", params=backwards)
        course = {"title": "T", "slug": "rules-beyond"}
        empty_category = await http.post("/courses", json={**course, "categoryId": ""})
        unknown_category = await http.post("/courses", json={**course, "categoryId": "cat_nope"})
        video = await http.post("/videos/parse", json={"url": "https://example.com/page"})
        webhook = await http.post("/webhooks", json={"url": "https://10.0.0.1/hook"})
        created = await http.post("/courses", json={**course, "categoryId": "cat_web_development"})
        publish = await http.post(f"/courses/{created.json()['course']['id']}/publish")
    assert (
        (threads.status_code, threads.json()["error"])
        == (audit.status_code, audit.json()["error"])
        == (422, "unprocessable")
    )
    assert empty_category.status_code == 400 and empty_category.json()["message"].startswith(
        "Invalid input: categoryId:"
    )
    assert unknown_category.json() == {
        "error": "not_found",
        "message": "categoryId: no category cat_nope; see list_categories",
    }
    assert (video.status_code, webhook.status_code, publish.status_code) == (422, 422, 409)
    assert ids  # the seeded data stands beside what these made


async def test_a_whole_number_with_a_fraction_part_of_zero_is_an_integer_as_json_schema_says(
    store, tenant, app
):
    ids = (await seed(store, tenant)).ids
    path = f"/courses/{ids['courseId']}/sections/{ids['sectionId']}"
    async with rest_client(app, tenant.key) as http:
        whole = await http.patch(path, json={"order": 0.0})
        fraction = await http.patch(path, json={"order": 0.5})
        boolean = await http.patch(path, json={"order": False})
    assert whole.status_code == 200 and whole.json()["section"]["order"] == 0
    assert fraction.json() == {
        "error": "bad_request",
        "message": "Invalid input: order: Input should be a valid integer",
    }
    assert boolean.json() == {
        "error": "bad_request",
        "message": "Invalid input: order: Input should be a valid integer",
    }
