"""Courses: create (with a nested curriculum), list and search, get, update, delete, publish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from storage import categories as categories_storage
from storage import courses as courses_storage
from storage.errors import ConstraintViolation
from storage.rules import Level
from storage.tables import Course, Lesson, Section
from tools.core.catalog import InputRule, operation
from tools.core.context import OperationContext
from tools.core.errors import Conflict, NotFound, Unprocessable
from tools.core.fields import SLUG_CHECKS, Price, Title
from tools.core.models import (
    Deleted,
    InputModel,
    OutputModel,
    Page,
    PageQuery,
    UtcDatetime,
    WebUrl,
)
from tools.core.paging import paged
from tools.core.permissions import Permission
from tools.core.updates import given_changes, unchanged
from tools.domains.curriculum import (
    CourseRef,
    LessonFields,
    SectionPublic,
    columns,
    curriculum_fields,
    lesson_content,
    owned_course,
    video_columns,
)

__all__ = [
    "create_course",
    "delete_course",
    "get_course",
    "list_courses",
    "publish_course",
    "unpublish_course",
    "update_course",
]

Slug = Annotated[str, Field(min_length=1, max_length=200), *SLUG_CHECKS]
# One nested create is one transaction, and on SQLite it holds the only writer while it runs:
# at most 1,000 lessons keeps it well under a second, so other tenants' writes are not held up.
MAX_SECTIONS = 100
MAX_LESSONS_PER_SECTION = 200
MAX_NESTED_LESSONS = 1000
Description = Annotated[str, Field(max_length=10000)]
ShortDescription = Annotated[str, Field(max_length=500)]


# ---- wire models


class CoursePublic(OutputModel):
    id: str
    title: str
    slug: str
    description: str | None
    short_description: str | None
    thumbnail_url: str | None
    trailer_url: str | None
    price: int
    is_free: bool
    level: Level | None
    category_id: str
    published: bool
    published_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class CourseDetail(CoursePublic):
    section_count: int
    lesson_count: int
    total_duration: int = Field(description="Seconds, all lessons.")
    sections: list[SectionPublic]


class CourseResult(OutputModel):
    course: CoursePublic


class CourseDetailResult(OutputModel):
    course: CourseDetail


class NewSection(InputModel):
    title: Title
    lessons: list[LessonFields] = Field(default=[], max_length=MAX_LESSONS_PER_SECTION)


class CreateCourseInput(InputModel):
    title: Title
    slug: Slug = Field(description="Unique, like intro-to-python.")
    description: Description | None = None
    short_description: ShortDescription | None = None
    thumbnail_url: WebUrl | None = None
    trailer_url: WebUrl | None = None
    price: Price = Field(default=0, description="Cents.")
    is_free: bool = False
    level: Level | None = None
    category_id: str = Field(min_length=1, max_length=100, description="From list_categories.")
    published: bool = Field(default=False, description="Publish now (needs a lesson).")
    sections: list[NewSection] = Field(
        default=[],
        max_length=MAX_SECTIONS,
        description=f"In order; at most {MAX_NESTED_LESSONS} lessons in all.",
    )

    @field_validator("sections")
    @classmethod
    def _bounded_curriculum(cls, sections: list[NewSection]) -> list[NewSection]:
        # A sum over the sections, which JSON Schema cannot bound: Unprocessable, not the ValueError
        # that pydantic would turn into a bad_request. Pydantic lets other exceptions through, so it
        # is still refused while the arguments are read, before the write takes the store's writer.
        lessons = sum(len(section.lessons) for section in sections)
        if lessons > MAX_NESTED_LESSONS:
            raise Unprocessable(
                f"Invalid input: sections: at most {MAX_NESTED_LESSONS} lessons in one call, got {lessons}; "
                "add the rest with create_lesson"
            )
        return sections


class CourseDeleted(Deleted):
    """A deleted course, and what went with it (the course was locked: nothing came in between)."""

    sections_deleted: int
    lessons_deleted: int
    enrollments_deleted: int


class ListCoursesInput(PageQuery):
    search: str | None = Field(
        default=None, max_length=200, description="Title contains it, or the exact slug."
    )
    status: Literal["published", "draft", "all"] = "all"


class UpdateCourseInput(CourseRef):
    title: Title = unchanged()
    slug: Slug = unchanged()
    description: Description | None = Field(default=None, description="null clears it.")
    short_description: ShortDescription | None = Field(default=None, description="null clears it.")
    thumbnail_url: WebUrl | None = Field(default=None, description="null clears it.")
    trailer_url: WebUrl | None = Field(default=None, description="null clears it.")
    price: Price = unchanged(description="Cents.")
    is_free: bool = unchanged()
    level: Level | None = Field(default=None, description="null clears it.")
    category_id: str = unchanged(min_length=1, max_length=100)


# ---- helpers


def _course_public(course: Course) -> CoursePublic:
    return CoursePublic.model_validate(course, from_attributes=True)


def _course_detail(
    course: Course | Mapping[str, Any],
    sections: Sequence[Section | Mapping[str, Any]],
    lessons: Sequence[Lesson | Mapping[str, Any]],
) -> CourseDetail:
    lesson_columns = [columns(lesson) for lesson in lessons]
    return CourseDetail.model_validate(
        {
            **columns(course),
            "section_count": len(sections),
            "lesson_count": len(lesson_columns),
            "total_duration": sum(lesson["duration"] for lesson in lesson_columns),
            "sections": curriculum_fields(sections, lesson_columns),
        }
    )


async def _check_category(ctx: OperationContext, category_id: str) -> None:
    if await categories_storage.get_category(ctx.db, category_id=category_id) is None:
        raise NotFound(f"categoryId: no category {category_id}; see list_categories")


async def _check_slug_free(ctx: OperationContext, slug: str, *, course_id: str | None = None) -> None:
    if await courses_storage.slug_taken(ctx.db, slug=slug, except_course_id=course_id):
        raise _slug_conflict(slug)


def _curriculum(data: CreateCourseInput) -> list[courses_storage.NewSection]:
    """The nested sections with their lessons' content; a bad videoUrl is named by its path."""
    return [
        courses_storage.NewSection(
            title=given.title,
            lessons=[
                lesson_content(
                    fields, video_columns(fields.video_url, field=f"sections[{i}].lessons[{j}].videoUrl")
                )
                for j, fields in enumerate(given.lessons)
            ],
        )
        for i, given in enumerate(data.sections)
    ]


def _slug_conflict(slug: str) -> Conflict:
    return Conflict(f"A course with slug {slug} already exists")


# ---- operations


@operation(
    title="Create course",
    permission=Permission.COURSES_WRITE,
    http=("POST", "/courses", 201),
    input_rules=(
        InputRule("categoryId names a category of GET /categories.", NotFound),
        "published: true needs at least one lesson in sections.",
        f"At most {MAX_NESTED_LESSONS} lessons in all sections.",
        "Each videoUrl is a supported video link (see POST /videos/parse).",
    ),
    kind="write",
    events=("course.created",),
)
async def create_course(ctx: OperationContext, data: CreateCourseInput) -> CourseDetailResult:
    """Create a course, optionally with sections[].lessons[] (all or nothing)."""
    await _check_category(ctx, data.category_id)
    curriculum = _curriculum(data)
    if data.published and not any(section.lessons for section in curriculum):
        raise Unprocessable("Invalid input: published: a course needs at least one lesson to be published")
    await _check_slug_free(ctx, data.slug)
    now = ctx.now()
    try:
        course = await courses_storage.add_course(
            ctx.db, producer_id=ctx.producer_id, at=now, **data.model_dump(exclude={"sections"})
        )
    except ConstraintViolation:
        # A concurrent write of the same slug won the race.
        raise _slug_conflict(data.slug) from None
    sections, lessons = await courses_storage.add_curriculum(
        ctx.db, course_id=course.id, sections=curriculum, at=now
    )
    return CourseDetailResult(course=_course_detail(course, sections, lessons))


@operation(
    title="List courses",
    permission=Permission.COURSES_READ,
    http=("GET", "/courses"),
    kind="read",
    auth=("api_key", "session"),
    transports=("mcp", "rest", "dashboard"),  # the dashboard's school pages
)
async def list_courses(ctx: OperationContext, data: ListCoursesInput) -> Page[CoursePublic]:
    """Courses, newest first, without curriculum."""
    published = {"published": True, "draft": False, "all": None}[data.status]
    statement = courses_storage.courses_query(
        producer_id=ctx.producer_id, search=data.search, published=published
    )
    return await paged(ctx.db, statement, query=data, convert=_course_public)


@operation(
    title="Get course",
    permission=Permission.COURSES_READ,
    http=("GET", "/courses/{courseId}"),
    kind="read",
)
async def get_course(ctx: OperationContext, data: CourseRef) -> CourseDetailResult:
    """A course with its curriculum (sections, lessons, in order) and totals."""
    found = await courses_storage.course_with_curriculum(
        ctx.db, producer_id=ctx.producer_id, course_id=data.course_id
    )
    if found is None:
        raise NotFound("Course not found")
    return CourseDetailResult(course=_course_detail(*found))


@operation(
    title="Update course",
    permission=Permission.COURSES_WRITE,
    http=("PATCH", "/courses/{courseId}"),
    input_rules=(InputRule("categoryId names a category of GET /categories.", NotFound),),
    kind="write",
    idempotent=True,
    events=("course.updated",),
)
async def update_course(ctx: OperationContext, data: UpdateCourseInput) -> CourseResult:
    """Update a course (publish_course publishes it)."""
    course = await owned_course(ctx, data.course_id, lock=True)
    changes = given_changes(data, target=CourseRef)
    if changes.get("slug", course.slug) != course.slug:
        await _check_slug_free(ctx, changes["slug"], course_id=course.id)
    if changes.get("category_id", course.category_id) != course.category_id:
        await _check_category(ctx, changes["category_id"])
    try:
        await courses_storage.update_course(ctx.db, course=course, changes=changes, at=ctx.now())
    except ConstraintViolation:
        # A concurrent write of the same slug won the race.
        raise _slug_conflict(course.slug) from None
    return CourseResult(course=_course_public(course))


@operation(
    title="Delete course",
    permission=Permission.COURSES_WRITE,
    http=("DELETE", "/courses/{courseId}"),
    kind="delete",
    events=("course.deleted",),
)
async def delete_course(ctx: OperationContext, data: CourseRef) -> CourseDeleted:
    """Delete a course and its sections, lessons, enrollments, progress; counts them."""
    course = await owned_course(ctx, data.course_id, lock=True)
    sections, lessons, enrollments = await courses_storage.count_course_contents(ctx.db, course_id=course.id)
    await courses_storage.delete_course(ctx.db, course_id=course.id)
    return CourseDeleted(
        id=course.id, sections_deleted=sections, lessons_deleted=lessons, enrollments_deleted=enrollments
    )


@operation(
    title="Publish course",
    permission=Permission.COURSES_WRITE,
    http=("POST", "/courses/{courseId}/publish"),
    input_rules=(InputRule("The course has at least one lesson.", Conflict),),
    kind="write",
    idempotent=True,
    events=("course.published",),
)
async def publish_course(ctx: OperationContext, data: CourseRef) -> CourseResult:
    """Publish a course; it needs a lesson (else conflict)."""
    course = await owned_course(ctx, data.course_id, lock=True)
    if not course.published:
        if await courses_storage.count_lessons(ctx.db, course_id=course.id) == 0:
            raise Conflict("This course has no lessons: add at least one before publishing")
        now = ctx.now()
        await courses_storage.update_course(
            ctx.db, course=course, changes={"published": True, "published_at": now}, at=now
        )
    return CourseResult(course=_course_public(course))


@operation(
    title="Unpublish course",
    permission=Permission.COURSES_WRITE,
    http=("DELETE", "/courses/{courseId}/publish"),
    kind="write",
    idempotent=True,
    events=("course.unpublished",),
)
async def unpublish_course(ctx: OperationContext, data: CourseRef) -> CourseResult:
    """Back to draft; its content and enrollments stay."""
    course = await owned_course(ctx, data.course_id, lock=True)
    if course.published:
        await courses_storage.update_course(
            ctx.db, course=course, changes={"published": False, "published_at": None}, at=ctx.now()
        )
    return CourseResult(course=_course_public(course))
