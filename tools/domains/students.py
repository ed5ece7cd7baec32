"""Students: register, list and search, get, update."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from storage import accounts as accounts_storage
from storage import erasure as erasure_storage
from storage import students as students_storage
from storage.errors import ConstraintViolation
from storage.rules import EMAIL_MAX_LENGTH, is_email
from storage.students import STUDENT_ROLE, students_query
from storage.tables import User
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import Conflict, NotFound, Unprocessable
from tools.core.fields import NOT_BLANK_PATTERN, SEARCHES_IDENTITIES, RestSchema, Secret, whitespace_class
from tools.core.models import (
    InputModel,
    OutputModel,
    Page,
    PageQuery,
    SecretResult,
    UtcDatetime,
    WebUrl,
)
from tools.core.paging import paged
from tools.core.passwords import generate_password, hash_generated_password, hash_password
from tools.core.permissions import Permission
from tools.core.updates import given_changes, unchanged
from tools.domains.accounts import normalize_email
from tools.domains.streaks import Streak, streaks, utc_day

__all__ = [
    "StudentPublic",
    "erase_student",
    "get_student",
    "list_students",
    "owned_student",
    "register_student",
    "update_student",
]


def _check_email(value: str) -> str:
    value = value.strip()
    if not is_email(value):
        raise ValueError("must be an email address like name@example.com")
    return value


def _check_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


Name = Annotated[
    str,
    Field(min_length=1, max_length=200),
    AfterValidator(_check_name),
    RestSchema(pattern=NOT_BLANK_PATTERN),
]
_SPACE, _NOT_SPACE_OR_AT = whitespace_class(negated=False), whitespace_class(negated=True, also="@")
EMAIL_PATTERN = f"^{_SPACE}*{_NOT_SPACE_OR_AT}+@{_NOT_SPACE_OR_AT}+\\.{_NOT_SPACE_OR_AT}+{_SPACE}*$"
"""`storage.rules.is_email` of the text with its surrounding whitespace stripped, as a JSON Schema pattern."""
Email = Annotated[
    str,
    Field(max_length=EMAIL_MAX_LENGTH),
    AfterValidator(_check_email),
    # No `format: email`: RFC 5321 is stricter than the rule (`storage.rules.is_email`); the pattern is the whole rule.
    RestSchema(pattern=EMAIL_PATTERN),
]
Bio = Annotated[str, Field(max_length=2000)]


class StudentPublic(OutputModel):
    id: str
    name: str
    email: str
    avatar_url: str | None
    bio: str | None
    role: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


def student_public(user: User) -> StudentPublic:
    return StudentPublic.model_validate(user, from_attributes=True)


class StudentDetail(StudentPublic):
    streak: Streak = Field(description="Learning streak in days (UTC), from progress updates.")


class StudentResult(OutputModel):
    student: StudentPublic


class StudentDetailResult(OutputModel):
    student: StudentDetail


class RegisteredStudentResult(SecretResult):
    student: StudentPublic
    generated_password: Secret | None = Field(
        description="Set only when no password was given: shown once, never stored in clear."
    )


class RegisterStudentInput(InputModel):
    name: Name
    email: Email
    password: str | None = Field(default=None, min_length=8, max_length=128)
    avatar_url: WebUrl | None = Field(default=None, description="http(s) URL.")
    bio: Bio | None = Field(default=None, description="Max 2000 characters.")


class ListStudentsInput(PageQuery):
    search: Annotated[str | None, SEARCHES_IDENTITIES] = Field(
        default=None, max_length=200, description="Name contains it, or the exact email."
    )


class StudentRef(InputModel):
    student_id: str = Field(max_length=100)


class UpdateStudentInput(StudentRef):
    name: Name = unchanged()
    avatar_url: WebUrl | None = Field(default=None, description="null clears it.")
    bio: Bio | None = Field(default=None, description="null clears it.")


async def owned_student(ctx: OperationContext, student_id: str) -> User:
    """The caller's student; another producer's, or a staff user, is as missing as a nonexistent one."""
    user = await accounts_storage.get_user(
        ctx.db, producer_id=ctx.producer_id, user_id=student_id, role=STUDENT_ROLE
    )
    if user is None:
        raise NotFound("Student not found")
    return user


@operation(
    title="Register student",
    permission=Permission.STUDENTS_WRITE,
    http=("POST", "/students", 201),
    kind="write",
    events=("student.registered",),
)
async def register_student(ctx: OperationContext, data: RegisterStudentInput) -> RegisteredStudentResult:
    """Register a student (email unique); no password: one is made, shown once."""
    email_normalized = normalize_email(data.email)
    existing = await accounts_storage.get_user_by_email(
        ctx.db, producer_id=ctx.producer_id, email_normalized=email_normalized
    )
    if existing is not None:
        raise Conflict(f"A user with email {data.email} already exists")
    generated = None
    if data.password is None:
        generated = generate_password()
        password_hash = await hash_generated_password(generated)
    else:
        password_hash = await hash_password(data.password)
    try:
        user = await students_storage.add_student(
            ctx.db,
            producer_id=ctx.producer_id,
            name=data.name,
            email=data.email,
            email_normalized=email_normalized,
            password_hash=password_hash,
            avatar_url=data.avatar_url,
            bio=data.bio,
            at=ctx.now(),
        )
    except ConstraintViolation:
        # A concurrent registration of the same email won the race.
        raise Conflict(f"A user with email {data.email} already exists") from None
    return RegisteredStudentResult(student=student_public(user), generated_password=generated)


@operation(
    title="List students",
    permission=Permission.STUDENTS_READ,
    http=("GET", "/students"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def list_students(ctx: OperationContext, data: ListStudentsInput) -> Page[StudentPublic]:
    """Students, newest first. Paginated."""
    statement = students_query(producer_id=ctx.producer_id, search=data.search)
    return await paged(ctx.db, statement, query=data, convert=student_public)


@operation(
    title="Get student",
    permission=Permission.STUDENTS_READ,
    http=("GET", "/students/{studentId}"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def get_student(ctx: OperationContext, data: StudentRef) -> StudentDetailResult:
    """A student with current and longest streak."""
    found = await students_storage.student_with_learning_days(
        ctx.db, producer_id=ctx.producer_id, student_id=data.student_id
    )
    if found is None:
        raise NotFound("Student not found")
    student, days = found
    return StudentDetailResult(
        student=StudentDetail(**student, streak=streaks(days, today=utc_day(ctx.now())))
    )


@operation(
    title="Update student",
    permission=Permission.STUDENTS_WRITE,
    http=("PATCH", "/students/{studentId}"),
    kind="write",
    idempotent=True,
    events=("student.updated",),
)
async def update_student(ctx: OperationContext, data: UpdateStudentInput) -> StudentResult:
    """Update a student's name, avatarUrl or bio."""
    user = await owned_student(ctx, data.student_id)
    changes = given_changes(data, target=StudentRef)
    await students_storage.update_student(ctx.db, student=user, changes=changes, at=ctx.now())
    return StudentResult(student=student_public(user))


class EraseStudentInput(StudentRef):
    confirm: str = Field(max_length=320, description="Their id or email, again.")
    posts: Literal["delete", "keep_anonymous"] = Field(
        description='Delete (with replies), or keep as "Deleted student".'
    )


class StudentErased(OutputModel):
    id: str
    erased: Literal[True] = True
    posts: Literal["delete", "keep_anonymous"]
    threads: int = Field(description="Their threads, deleted or kept.")
    comments: int = Field(description="Their comments, deleted or kept.")


_CONFIRM_RULE = "confirm must be the student's id or email"


@operation(
    title="Erase student",
    permission=Permission.STUDENTS_WRITE,
    http=("POST", "/students/{studentId}/erase"),
    kind="delete",
    idempotent=False,
    events=("student.erased",),
    input_rules=(_CONFIRM_RULE,),
    transports=("mcp", "rest", "dashboard"),  # the student's page
    auth=("api_key", "session"),
)
async def erase_student(ctx: OperationContext, data: EraseStudentInput) -> StudentErased:
    """Erase a student: profile, enrollments, progress, certificates, memberships, media; their data
    in events, deliveries, audit."""
    user = await owned_student(ctx, data.student_id)
    typed = data.confirm.strip()
    if typed != user.id and normalize_email(typed) != user.email_normalized:
        raise Unprocessable("Invalid input: confirm: must be this student's id or email; nothing was erased")
    posts = await erasure_storage.erase_student(
        ctx.db, producer_id=ctx.producer_id, student=user, posts=data.posts, at=ctx.now()
    )
    return StudentErased(id=data.student_id, posts=data.posts, threads=posts.threads, comments=posts.comments)
