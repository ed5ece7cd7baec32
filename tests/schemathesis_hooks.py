"""schemathesis hooks for this API, used by tests/test_openapi.py and by the CLI against a real
server (`SCHEMATHESIS_HOOKS=tests.schemathesis_hooks uv run schemathesis run ...`).

Some operations list rules on their input that JSON Schema cannot state (`x-input-rules` in the
document: between fields, against stored data, a parser's); the document says such a request is
refused with 400 naming the rule. `filter_failure` lets exactly those refusals through
positive_data_acceptance: a 400 whose message words one of the operation's rules. Any other 400
to a request the schema allows stays a failure.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from schemathesis.generation.meta import TestPhase

from tools.core.runner import IDEMPOTENCY_HEADER

__all__ = ["RULE_REFUSALS", "refuses_by_a_listed_rule"]

_SINCE_UNTIL = ("Invalid input: since, until: since must not be after until",)
_VIDEO_URL = ("Invalid input: videoUrl: ",)  # any refusal of the video parser: videoUrl is a plain string otherwise
_WEBHOOK_URL = (  # after "Invalid input: url: <the url>"
    ": a URL with credentials in it is not accepted",
    ": the port is not a number from 1 to 65535",
    ": its host does not resolve",
    ": its host resolves to a private, loopback or reserved address",
    ": must be https",
    ": its host is not a host name",
)
RULE_REFUSALS: dict[str, tuple[str, ...]] = {
    "list_audit_events": _SINCE_UNTIL,
    "list_threads": _SINCE_UNTIL,
    "list_threads_of_all_communities": _SINCE_UNTIL,
    "update_progress": ("Invalid input: lessonId: give lessonId or lessonPosition, exactly one",),
    "enroll_students": ("Invalid input: studentIds: give studentIds or emails",),
    "create_course": (
        "Invalid input: categoryId: no category ",
        "Invalid input: published: a course needs at least one lesson",
        "lessons in one call",
        "].videoUrl: ",  # sections[i].lessons[j].videoUrl, refused by the video parser
    ),
    "update_course": ("Invalid input: categoryId: no category ",),
    "publish_course": ("This course has no lessons",),
    "parse_video": ("Invalid input: url: ",),  # url is a plain string: any refusal is the parser's
    "create_lesson": _VIDEO_URL,
    "update_lesson": _VIDEO_URL,
    "create_webhook": _WEBHOOK_URL,
    "update_webhook": _WEBHOOK_URL,
}
"""How the server words the refusal of each rule an operation lists beyond its schema
(`x-input-rules`): a 400 with one of these is the documented answer to a request the schema allows.
Any other 400 to such a request stays a positive_data_acceptance failure."""


def refuses_by_a_listed_rule(case: Any, response: Any) -> bool:
    """`response` is the 400 of one of the rules `case`'s operation lists beyond its schema."""
    refusals = RULE_REFUSALS.get(case.operation.definition.raw.get("operationId"), ())
    if response.status_code != 400 or not refusals:
        return False
    message = response.json().get("message", "")
    return any(refusal in message for refusal in refusals)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """In the stateful phase, each create gets an Idempotency-Key of its own.

    That phase checks that a created resource can be read and, once deleted, is gone. A key it
    repeats with the same body (it replays scenarios) would be an idempotent retry: by design the
    first answer again, naming the resource made then, even if deleted since. The other phases
    still send the keys they generate, valid and invalid."""
    meta = case.meta
    if meta is not None and meta.phase.name == TestPhase.STATEFUL and case.headers and IDEMPOTENCY_HEADER in case.headers:
        case.headers[IDEMPOTENCY_HEADER] = uuid.uuid4().hex


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    return not refuses_by_a_listed_rule(case, response)
