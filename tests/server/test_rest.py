"""Every REST endpoint of the catalog: success, 401, 403, 404, 400, and the 409 cases.

Walks the catalog, so operations added later (enrollments) are covered by the same tests.
"""

from __future__ import annotations

import json
import sys

import pytest

from server.rest import MAX_BODY_DEPTH
from tests.support.factories import add_key
from tests.support.rest import (
    assert_documented,
    bearer,
    example_arguments,
    rest_call,
    rest_client,
    seed,
)
from tools.core.catalog import Operation
from tools.core.permissions import RESOURCES, AllOf, AnyOf
from tools.registry import OPERATIONS_BY_NAME, TOOLS

_PLACEHOLDER_IDS = {
    name: f"{name}_placeholder"
    for name in (
        "studentId",
        "otherStudentId",
        "courseId",
        "sectionId",
        "lessonId",
        "communityId",
        "userId",
        "threadId",
        "commentId",
        "enrollmentId",
        "webhookId",
    )
} | {"categoryId": "cat_web_development"}
MISSING = "missing_0123456789"


def _ids(op: Operation) -> str:
    return op.name


def _missing_field(op: Operation) -> str | None:
    """The argument to point at nothing for a 404: the innermost path parameter, else an id in the body."""
    if op.path_params:
        return op.path_params[-1]
    arguments = example_arguments(op, _PLACEHOLDER_IDS)
    return next((name for name in arguments if name.endswith("Id") and name != "categoryId"), None)


WITH_PERMISSION = [op for op in TOOLS if op.permission is not None]
WITH_404 = [op for op in TOOLS if _missing_field(op) is not None]


@pytest.mark.parametrize("op", TOOLS, ids=_ids)
async def test_success_answers_the_documented_status_and_body(store, tenant, http, op):
    seeded = await seed(store, tenant)
    response = await rest_call(http, op, example_arguments(op, seeded.ids))
    assert response.status_code == op.http_status, response.text
    assert response.headers["content-type"] == "application/json"
    op.output_model.model_validate(response.json())  # the operation's result, exactly
    assert_documented(op, response)  # and what the OpenAPI document promises


@pytest.mark.parametrize("op", TOOLS, ids=_ids)
async def test_missing_or_invalid_key_is_401_with_a_bearer_challenge(app, op):
    arguments = example_arguments(op, _PLACEHOLDER_IDS)
    async with rest_client(app) as anonymous:
        missing = await rest_call(anonymous, op, arguments)
        invalid = await rest_call(anonymous, op, arguments, headers=bearer("blk_" + "x" * 43))
    for response in (missing, invalid):
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="blohko"')
    assert missing.json()["message"].startswith("Missing API key")
    assert_documented(op, missing)
    assert invalid.json() == {"error": "unauthorized", "message": "Invalid API key"}


@pytest.mark.parametrize("op", WITH_PERMISSION, ids=_ids)
async def test_key_with_another_permission_is_403_forbidden(store, tenant, app, op):
    required = op.permission
    if isinstance(required, AllOf):  # all but the last: the message names what is missing
        grants, lacking = (
            [str(p) for p in required.permissions[:-1]],
            f"the {required.permissions[-1]} permission",
        )
    elif isinstance(required, AnyOf):  # a grant of none of them
        grants = [f"{next(r for r in RESOURCES if all(not p.startswith(r) for p in required.permissions))}:*"]
        lacking = f"one of the {', '.join(required.permissions)} permissions"
    else:
        resource, action = str(required).split(":")
        # A write needs more than read; a read is refused to a key for another resource.
        grants = (
            [f"{resource}:read"]
            if action == "write"
            else [f"{next(r for r in RESOURCES if r != resource)}:*"]
        )
        lacking = f"the {required} permission"
    key = await add_key(store, tenant, grants)
    async with rest_client(app, key) as http:
        response = await rest_call(http, op, example_arguments(op, _PLACEHOLDER_IDS))
    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "message": f"This API key lacks {lacking} needed for {op.name}",
    }
    assert_documented(op, response)


def test_only_whoami_and_parse_video_need_no_permission():
    assert {op.name for op in TOOLS} - {op.name for op in WITH_PERMISSION} == {"whoami", "parse_video"}


@pytest.mark.parametrize("op", WITH_404, ids=_ids)
async def test_an_id_that_does_not_exist_is_404_not_found(store, tenant, http, op):
    seeded = await seed(store, tenant)
    arguments = {**example_arguments(op, seeded.ids), _missing_field(op): MISSING}
    response = await rest_call(http, op, arguments)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert response.json()["message"].endswith("not found")
    assert_documented(op, response)


def test_every_endpoint_with_a_resource_in_its_path_has_a_404_case():
    without = {op.name for op in TOOLS} - {op.name for op in WITH_404}
    assert all(not OPERATIONS_BY_NAME[name].path_params for name in without)
    assert {"get_course", "delete_comment", "remove_member", "get_student"} <= {op.name for op in WITH_404}


@pytest.mark.parametrize("op", TOOLS, ids=_ids)
async def test_an_unknown_field_is_400_naming_it(http, op):
    arguments = {**example_arguments(op, _PLACEHOLDER_IDS), "bogusField": "1"}
    response = await rest_call(http, op, arguments)
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request", "message": "Invalid input: bogusField: unknown field"}
    assert_documented(op, response)


def _wrong_type(value):
    return {str: 12345, bool: "yes", int: "12", list: "x", dict: 7}[type(value)]


BODY_OPS = [
    op
    for op in TOOLS
    if op.http_method in ("POST", "PATCH")
    and set(example_arguments(op, _PLACEHOLDER_IDS)) - set(op.path_params)
]


@pytest.mark.parametrize("op", BODY_OPS, ids=_ids)
async def test_a_body_field_of_the_wrong_type_is_400_naming_it(http, op):
    arguments = example_arguments(op, _PLACEHOLDER_IDS)
    name = next(name for name in arguments if name not in op.path_params)
    response = await rest_call(http, op, {**arguments, name: _wrong_type(arguments[name])})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert response.json()["message"].startswith(f"Invalid input: {name}: ")


LIST_OPS = [op for op in TOOLS if "page" in op.input_model.model_fields]


BAD_PAGES = {
    "limit=abc": "Invalid input: limit: must be an integer",
    "limit=0": "Invalid input: limit: Input should be greater than or equal to 1",
    "limit=101": "Invalid input: limit: Input should be less than or equal to 100",
    "page=0": "Invalid input: page: Input should be greater than or equal to 1",
    "page=1.5": "Invalid input: page: must be an integer",
}


@pytest.mark.parametrize("op", LIST_OPS, ids=_ids)
async def test_a_bad_page_or_limit_is_400_naming_it(http, op):
    answers = {}
    for query in BAD_PAGES:
        name, value = query.split("=")
        response = await rest_call(http, op, {**example_arguments(op, _PLACEHOLDER_IDS), name: value})
        answers[query] = (response.status_code, response.json()["message"])
    assert answers == {query: (400, message) for query, message in BAD_PAGES.items()}


# ---- bodies that are not a JSON object of the right size


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"name": "Jane", ', "Invalid input: the request body is not valid JSON"),
        (b"\xff\xfe not utf-8", "Invalid input: the request body is not valid JSON"),
        (b'["name", "Jane"]', "Invalid input: the request body must be a JSON object"),
        (b'"Jane"', "Invalid input: the request body must be a JSON object"),
        (
            b"[" * 100_000 + b"]" * 100_000,
            "Invalid input: the request body is nested too deeply (at most 32 levels)",
        ),
        (
            b'{"name": "\\ud800", "email": "a@example.com"}',
            "Invalid input: the request body holds a lone UTF-16 surrogate",
        ),
        # Whitespace to Python, not to JSON (schemathesis: a PATCH of "\x0c" was read as no body, 200).
        (b"\x0c", "Invalid input: the request body is not valid JSON"),
        (b" \x0b ", "Invalid input: the request body is not valid JSON"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400(http, content, message):
    response = await http.post("/students", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request", "message": message}


TOO_DEEP = {
    "error": "bad_request",
    "message": "Invalid input: the request body is nested too deeply (at most 32 levels)",
}


async def test_a_body_nested_around_the_interpreters_recursion_limit_is_400_not_500(http):
    # json.loads and a recursive walk of the parsed body overflow at slightly different depths:
    # every depth around the limit must be a 400.
    limit = sys.getrecursionlimit()
    for depth in range(limit - 100, limit + 10):
        content = '{"url":' + "[" * depth + "]" * depth + "}"
        response = await http.post(
            "/videos/parse", content=content, headers={"Content-Type": "application/json"}
        )
        assert (response.status_code, response.json()) == (400, TOO_DEEP), depth


async def test_a_body_is_refused_one_level_past_the_nesting_bound(http):
    def body(depth: int) -> str:  # the object itself is the first level
        return '{"url":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"

    at_bound = await http.post(
        "/videos/parse", content=body(MAX_BODY_DEPTH), headers={"Content-Type": "application/json"}
    )
    past_it = await http.post(
        "/videos/parse", content=body(MAX_BODY_DEPTH + 1), headers={"Content-Type": "application/json"}
    )
    assert at_bound.json() == {
        "error": "bad_request",
        "message": "Invalid input: url: Input should be a valid string",
    }
    assert (past_it.status_code, past_it.json()) == (400, TOO_DEEP)


@pytest.mark.parametrize(
    "content",
    [
        b'{"\\ud800": 1}',
        b'{"title": "T", "sections": [{"title": "S", "lessons": [{"\\udc00": "x"}]}]}',
        b'{"title": "T", "sections": [{"title": "S", "lessons": [{"title": ["ok", "\\ud800"]}]}]}',
    ],
)
async def test_a_lone_surrogate_in_any_key_or_value_at_any_depth_is_400(http, content):
    response = await http.post("/courses", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid input: the request body holds a lone UTF-16 surrogate"


async def test_a_body_over_one_mebibyte_is_400_whether_declared_or_streamed(http):
    body = json.dumps({"name": "x" * (1024 * 1024), "email": "a@example.com"}).encode()
    declared = await http.post("/students", content=body, headers={"Content-Type": "application/json"})

    async def chunks():
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    streamed = await http.post("/students", content=chunks(), headers={"Content-Type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 400
        assert response.json()["message"] == "Invalid input: the request body is larger than 1048576 bytes"


async def test_query_parameters_on_a_write_are_400(http):
    response = await http.post("/students?name=Jane", json={"name": "Jane", "email": "jane@example.com"})
    assert response.status_code == 400
    assert "name: unknown query parameter" in response.json()["message"]


async def test_a_path_parameter_repeated_in_the_body_is_400(store, tenant, http):
    seeded = await seed(store, tenant)
    response = await http.patch(
        f"/courses/{seeded.ids['courseId']}", json={"courseId": "other", "title": "T"}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid input: courseId: belongs in the URL path, not the body"


async def test_a_repeated_query_parameter_is_400(http):
    response = await http.get("/courses?limit=5&limit=6")
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid input: limit: given more than once"


async def test_a_wrong_method_is_405_with_a_json_body(http):
    response = await http.put("/courses")
    assert response.status_code == 405
    assert response.json()["error"] == "bad_request"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


async def test_an_unknown_path_is_404_with_a_json_body(http):
    response = await http.get("/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "No such endpoint"}


async def test_a_key_without_permission_gets_403_before_its_body_is_read(store, tenant, app):
    key = await add_key(store, tenant, ["courses:read"])
    async with rest_client(app, key) as http:
        response = await http.post(
            "/students", content=b"not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 403


# ---- 409: duplicates


async def test_a_duplicate_student_email_is_409(store, tenant, http):
    seeded = await seed(store, tenant)
    email = (await http.get(f"/students/{seeded.ids['studentId']}")).json()["student"]["email"]
    response = await http.post("/students", json={"name": "Again", "email": email.upper()})
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "message": f"A user with email {email.upper()} already exists",
    }


async def test_a_duplicate_course_slug_is_409_on_create_and_update(store, tenant, http):
    seeded = await seed(store, tenant)
    taken = (await http.get(f"/courses/{seeded.ids['courseId']}")).json()["course"]["slug"]
    other = (
        await http.post(
            "/courses", json={"title": "B", "slug": "b-course", "categoryId": "cat_web_development"}
        )
    ).json()
    created = await http.post(
        "/courses", json={"title": "C", "slug": taken, "categoryId": "cat_web_development"}
    )
    updated = await http.patch(f"/courses/{other['course']['id']}", json={"slug": taken})
    for response in (created, updated):
        assert response.status_code == 409
        assert response.json() == {
            "error": "conflict",
            "message": f"A course with slug {taken} already exists",
        }


async def test_a_duplicate_community_slug_is_409_on_create_and_update(store, tenant, http):
    seeded = await seed(store, tenant)
    taken = (await http.get(f"/communities/{seeded.ids['communityId']}")).json()["community"]["slug"]
    other = (await http.post("/communities", json={"name": "B", "slug": "b-community"})).json()["community"]
    created = await http.post("/communities", json={"name": "C", "slug": taken})
    updated = await http.patch(f"/communities/{other['id']}", json={"slug": taken})
    for response in (created, updated):
        assert response.status_code == 409
        assert response.json()["error"] == "conflict"


async def test_adding_a_member_twice_is_409(store, tenant, http):
    seeded = await seed(store, tenant)
    path = f"/communities/{seeded.ids['communityId']}/members"
    response = await http.post(path, json={"userId": seeded.ids["userId"]})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


async def test_enrolling_a_student_twice_is_409(store, tenant, http):
    seeded = await seed(store, tenant)  # already enrolls studentId in courseId
    body = {"studentId": seeded.ids["studentId"], "courseId": seeded.ids["courseId"]}
    response = await http.post("/enrollments", json=body)
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


async def test_another_producers_course_is_404_over_rest(store, tenant, tenant_factory, app):
    other = await tenant_factory("Other Academy")
    seeded = await seed(store, other)
    async with rest_client(app, tenant.key) as http:
        response = await http.get(f"/courses/{seeded.ids['courseId']}")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Course not found"}
