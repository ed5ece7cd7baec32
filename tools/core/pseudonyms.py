"""Pseudonymous access: students answered by a stable pseudonym instead of who they are.

An API key, an OAuth grant (a connected app) or a webhook endpoint made with
`identities: "pseudonymous"` never receives a person's name, email, avatar or bio. The runner
(`tools.core.runner.run_operation`) passes every answer of such a caller through `pseudonymized`,
whatever the operation, and the webhook worker (`server.webhooks`) every payload of such an
endpoint: one rule, applied to the answer as JSON, so event payloads (free-form JSON, whatever
shape a resource had when its event was written) are covered like typed answers, and a new
operation is covered without doing anything. The catalog-wide test
(`tests/tools/test_pseudonymous.py`) calls every operation such a key can see and looks for real
names and emails in the answers.

What counts as a person in an answer (wire names), at any depth:
- an object whose `id` is a user id (`user_...`): its `name`, `email`, `avatarUrl` and `bio`
  (students, members' users, thread and comment authors);
- a name or email next to the id of the person it names: `studentName`/`studentEmail` by
  `studentId`, `authorName` by `authorId`, `name`/`userName` by `userId` (enrollments,
  certificates, attention, most active posters, waiting threads);
- a `studentName` with no id beside it (an achievement): pseudonymized from the name itself, so
  it is stable too.

The pseudonym is HMAC-SHA256 keyed by the caller's id (the API key's, the grant's or the
endpoint's) over the user's id: `Student 1a2b3c4d`, email `student-1a2b3c4d@pseudonymous.invalid`
(`.invalid` is reserved and routes nowhere, RFC 2606), avatar and bio null. The same student is the
same pseudonym on every call through one key and another one through another key. It is a label,
not a secret: ids stay in the answers (writes need them), so the pseudonym hides who a student is,
not which student it is.

Searching students by name or email would find out who a pseudonym is, one guess at a time: an
input field marked `SEARCHES_IDENTITIES` (`tools.core.fields`) is refused for such a caller
(`refuse_identity_search`).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, TypeVar

from pydantic import BaseModel

from tools.core.errors import Forbidden
from tools.core.fields import SearchesIdentities

__all__ = [
    "IDENTITIES_NOTE",
    "PSEUDONYM_EMAIL_DOMAIN",
    "pseudonym",
    "pseudonym_email",
    "pseudonymized",
    "pseudonymized_model",
    "refuse_identity_search",
]

IDENTITIES_NOTE = "full, or pseudonymous: each student a stable pseudonym for this key, no name search."
PSEUDONYM_EMAIL_DOMAIN = "pseudonymous.invalid"

ModelT = TypeVar("ModelT", bound=BaseModel)

_USER_ID_PREFIX = "user_"
_PERSON_FIELDS = ("name", "email", "avatarUrl", "bio")
"""An identity's fields on an object whose `id` is a user's."""
_NAMED_BY = {
    "studentName": "studentId",
    "studentEmail": "studentId",
    "authorName": "authorId",
    "userName": "userId",
    "userEmail": "userId",
    "name": "userId",
}
"""A field naming a person, and the field beside it holding that person's id."""
_EMAILS = frozenset({"email", "studentEmail", "userEmail"})
_HIDDEN = frozenset({"avatarUrl", "bio"})


def _tag(salt: str, subject: str) -> str:
    return hmac.new(salt.encode(), subject.encode(), hashlib.sha256).hexdigest()[:8]


def pseudonym(salt: str, user_id: str) -> str:
    """The name `user_id` has for the caller whose id is `salt`."""
    return f"Student {_tag(salt, user_id)}"


def pseudonym_email(salt: str, user_id: str) -> str:
    """The email `user_id` has for the caller whose id is `salt`: routes nowhere."""
    return f"student-{_tag(salt, user_id)}@{PSEUDONYM_EMAIL_DOMAIN}"


def _replacement(field: str, value: Any, salt: str, subject: str) -> Any:
    if value is None or field in _HIDDEN:
        return None
    return pseudonym_email(salt, subject) if field in _EMAILS else pseudonym(salt, subject)


def pseudonymized(value: Any, *, salt: str) -> Any:
    """A copy of `value` (an answer or a payload as JSON) with every person's identity replaced by
    its pseudonym for `salt` (see the module's docstring)."""
    if isinstance(value, list):
        return [pseudonymized(item, salt=salt) for item in value]
    if not isinstance(value, dict):
        return value
    copy = {key: pseudonymized(item, salt=salt) for key, item in value.items()}
    own_id = copy.get("id")
    if isinstance(own_id, str) and own_id.startswith(_USER_ID_PREFIX):
        for field in _PERSON_FIELDS:
            if field in copy:
                copy[field] = _replacement(field, copy[field], salt, own_id)
    for field, id_field in _NAMED_BY.items():
        if field not in copy or (field == "name" and isinstance(own_id, str)):
            continue  # an object's own `name` is a person's only when its `id` is a user's (above)
        subject = copy.get(id_field)
        if isinstance(subject, str):
            copy[field] = _replacement(field, copy[field], salt, subject)
        elif field == "studentName" and isinstance(copy[field], str):
            copy[field] = pseudonym(salt, f"name:{copy[field]}")
    return copy


def pseudonymized_model(model: type[ModelT], answer: BaseModel, *, salt: str) -> ModelT:
    """`answer`, a `model`, with every person pseudonymized for `salt`."""
    return model.model_validate(pseudonymized(answer.model_dump(mode="json", by_alias=True), salt=salt))


def refuse_identity_search(operation: str, data: BaseModel) -> None:
    """`Forbidden` if `data` (validated input) sets a field marked `SEARCHES_IDENTITIES`: a
    pseudonymous caller may not look students up by name or email."""
    for name, field in type(data).model_fields.items():
        if (
            any(isinstance(item, SearchesIdentities) for item in field.metadata)
            and getattr(data, name) is not None
        ):
            raise Forbidden(
                f"{operation}: {field.alias or name}: this key is pseudonymous: it cannot find students "
                "by name or email; use their ids"
            )
