"""A course's curriculum: sections (chapters) and their lessons.

Order: sections within a course and lessons within a section have a 0-based `order`,
kept dense (0..n-1). A new item without `order` goes last; with `order` it is inserted
there and later siblings shift down. Moving (update with `order`) and deleting renumber
the siblings in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import Field

from storage import courses as courses_storage
from storage.rules import VideoType
from storage.tables import Course, Lesson, Section
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import NotFound
from tools.core.fields import Count, Id, IsoDatetime, Title
from tools.core.models import UPDATED_AFTER, Deleted, InputModel, OutputModel, UtcDatetime
from tools.core.permissions import Permission
from tools.core.updates import given_changes, unchanged
from tools.domains.videos import parse_video_url

__all__ = [
    "CourseRef",
    "LessonFields",
    "SectionPublic",
    "create_lesson",
    "create_section",
    "curriculum_fields",
    "delete_lesson",
    "delete_section",
    "get_lesson",
    "lesson_content",
    "list_lessons",
    "list_sections",
    "owned_course",
    "update_lesson",
    "update_section",
    "video_columns",
]


LessonDescription = Annotated[str, Field(max_length=5000)]

_ORDER = "0-based; omitted: last."
_MOVE = "0-based; moves it there."


# ---- wire models


class VideoMeta(OutputModel):
    type: VideoType
    video_id: str | None
    thumbnail_url: str | None
    original_url: str


class LessonPublic(OutputModel):
    id: str
    section_id: str
    course_id: str
    title: str
    description: str | None
    duration: int
    video_url: str | None = Field(description="Embed URL.")
    video_meta: VideoMeta | None
    is_preview: bool
    order: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


class SectionPublic(OutputModel):
    id: str
    course_id: str
    title: str
    order: int
    updated_at: UtcDatetime
    lessons: list[LessonPublic]


class LessonResult(OutputModel):
    lesson: LessonPublic


class LessonsResult(OutputModel):
    lessons: list[LessonPublic]


class SectionResult(OutputModel):
    section: SectionPublic


class SectionsResult(OutputModel):
    sections: list[SectionPublic]


class LessonFields(InputModel):
    # A lesson's content: create_lesson's arguments and each lesson nested in create_course.
    # No docstring: pydantic would repeat it in every schema that uses this model.

    title: Title
    description: LessonDescription | None = None
    duration: Count = Field(default=0, description="Seconds.")
    video_url: str | None = Field(default=None, max_length=2048, description="YouTube, Vimeo or direct.")
    is_preview: bool = Field(default=False, description="Viewable without enrollment.")


class CourseRef(InputModel):
    course_id: Id


class SectionRef(CourseRef):
    section_id: Id


class ListSectionsInput(CourseRef):
    updated_after: IsoDatetime | None = Field(default=None, description="Also when only its lessons changed.")


class ListLessonsInput(SectionRef):
    updated_after: IsoDatetime | None = Field(default=None, description=UPDATED_AFTER)


class LessonRef(SectionRef):
    lesson_id: Id


class CreateSectionInput(CourseRef):
    title: Title
    order: Count | None = Field(default=None, description=_ORDER)


class UpdateSectionInput(SectionRef):
    title: Title = unchanged()
    order: Count = unchanged(description=_MOVE)


class CreateLessonInput(LessonFields):
    course_id: Id
    section_id: Id
    order: Count | None = Field(default=None, description=_ORDER)


class UpdateLessonInput(LessonRef):
    title: Title = unchanged()
    description: LessonDescription | None = Field(default=None, description="null clears it.")
    duration: Count = unchanged()
    video_url: str | None = Field(
        default=None, max_length=2048, description="Re-parsed; null removes the video."
    )
    is_preview: bool = unchanged()
    order: Count = unchanged(description=_MOVE)


# ---- helpers shared with tools.domains.courses


def video_columns(url: str | None, *, field: str) -> dict[str, str | None]:
    """A lesson's video columns for `url` (parsed; None clears them); `BadRequest` naming `field`."""
    if url is None:
        return dict.fromkeys(
            ("video_url", "video_type", "video_id", "video_thumbnail_url", "video_original_url")
        )
    info = parse_video_url(url, field=field)
    return {
        "video_url": info.embed_url,
        "video_type": info.type,
        "video_id": info.video_id,
        "video_thumbnail_url": info.thumbnail_url,
        "video_original_url": info.original_url,
    }


def lesson_content(fields: LessonFields, video: Mapping[str, str | None]) -> dict[str, Any]:
    """A new lesson's own columns: its content as given and its video's columns (`video_columns`)."""
    return {
        "title": fields.title,
        "description": fields.description,
        "duration": fields.duration,
        "is_preview": fields.is_preview,
        **video,
    }


Row = Course | Section | Lesson | Mapping[str, Any]
"""A row as a model, or as the columns of a compiled read (`Db.raw`): the public views take both."""


def columns(row: Row) -> Mapping[str, Any]:
    return row if isinstance(row, Mapping) else row.model_dump()


def lesson_fields(row: Lesson | Mapping[str, Any]) -> dict[str, Any]:
    """What `LessonPublic` validates from a lesson row: its columns, the video's under `video_meta`."""
    values = columns(row)
    meta = None
    if values["video_type"] is not None:
        meta = {
            "type": values["video_type"],
            "video_id": values["video_id"],
            "thumbnail_url": values["video_thumbnail_url"],
            "original_url": values["video_original_url"],
        }
    return {**values, "video_meta": meta}


def lesson_public(row: Lesson | Mapping[str, Any]) -> LessonPublic:
    return LessonPublic.model_validate(lesson_fields(row))


def section_fields(
    row: Section | Mapping[str, Any], lessons: Iterable[Lesson | Mapping[str, Any]]
) -> dict[str, Any]:
    """What `SectionPublic` validates from a section row and its lessons' rows."""
    values = columns(row)
    return {
        "id": values["id"],
        "course_id": values["course_id"],
        "title": values["title"],
        "order": values["order"],
        "updated_at": values["updated_at"],
        "lessons": [lesson_fields(lesson) for lesson in lessons],
    }


def section_public(
    row: Section | Mapping[str, Any], lessons: Iterable[Lesson | Mapping[str, Any]]
) -> SectionPublic:
    return SectionPublic.model_validate(section_fields(row, lessons))


def curriculum_fields(
    sections: Iterable[Section | Mapping[str, Any]], lessons: Iterable[Lesson | Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each section's fields with its lessons', from two flat lists already in order (no query per
    section): validated whole by the model that holds them, in one call rather than one per lesson."""
    by_section: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for lesson in map(columns, lessons):
        by_section[lesson["section_id"]].append(lesson)
    return [section_fields(values, by_section[values["id"]]) for values in map(columns, sections)]


async def owned_course(ctx: OperationContext, course_id: str, *, lock: bool = False) -> Course:
    """The caller's course; another producer's is as missing as a nonexistent one.

    Writes to the curriculum pass `lock`, so concurrent edits of one course take turns."""
    course = await courses_storage.get_course(
        ctx.db, producer_id=ctx.producer_id, course_id=course_id, lock=lock
    )
    if course is None:
        raise NotFound("Course not found")
    return course


async def _section(
    ctx: OperationContext, data: SectionRef | CreateLessonInput, *, lock: bool = False
) -> Section:
    await owned_course(ctx, data.course_id, lock=lock)
    section = await courses_storage.get_section(ctx.db, course_id=data.course_id, section_id=data.section_id)
    if section is None:
        raise NotFound("Section not found")
    return section


async def _lesson(ctx: OperationContext, data: LessonRef, *, lock: bool = False) -> Lesson:
    await _section(ctx, data, lock=lock)
    lesson = await courses_storage.get_lesson(ctx.db, section_id=data.section_id, lesson_id=data.lesson_id)
    if lesson is None:
        raise NotFound("Lesson not found")
    return lesson


async def _remove(ctx: OperationContext, item: Section | Lesson) -> Deleted:
    """Delete `item` (the database cascades to what hangs off it) and close the gap among its siblings."""
    await courses_storage.delete_in_order(ctx.db, item=item)
    return Deleted(id=item.id)


# ---- sections


@operation(
    title="Create section",
    permission=Permission.COURSES_WRITE,
    http=("POST", "/courses/{courseId}/sections", 201),
    kind="write",
)
async def create_section(ctx: OperationContext, data: CreateSectionInput) -> SectionResult:
    """Add a section (chapter) to a course; later ones shift down."""
    await owned_course(ctx, data.course_id, lock=True)
    section = await courses_storage.add_section(
        ctx.db, course_id=data.course_id, title=data.title, position=data.order, at=ctx.now()
    )
    return SectionResult(section=section_public(section, []))


@operation(
    title="List sections",
    permission=Permission.COURSES_READ,
    http=("GET", "/courses/{courseId}/sections"),
    kind="read",
)
async def list_sections(ctx: OperationContext, data: ListSectionsInput) -> SectionsResult:
    """A course's sections in order, with their lessons in order."""
    await owned_course(ctx, data.course_id)
    sections = await courses_storage.sections_of_course(ctx.db, course_id=data.course_id)
    lessons = await courses_storage.lessons_of_course(ctx.db, course_id=data.course_id)
    if data.updated_after is not None:  # a whole curriculum is small (bounded): filtered here
        latest = {row.id: row.updated_at for row in sections}  # a section's last change, or its lessons'
        for lesson in lessons:
            latest[lesson.section_id] = max(latest[lesson.section_id], lesson.updated_at)
        changed = (row for row in sections if latest[row.id] > data.updated_after)
        sections = sorted(changed, key=lambda row: (latest[row.id], row.id))
    return SectionsResult.model_validate({"sections": curriculum_fields(sections, lessons)})


@operation(
    title="Update section",
    permission=Permission.COURSES_WRITE,
    http=("PATCH", "/courses/{courseId}/sections/{sectionId}"),
    kind="write",
    idempotent=True,
)
async def update_section(ctx: OperationContext, data: UpdateSectionInput) -> SectionResult:
    """Rename or move a section; the others renumber."""
    section = await _section(ctx, data, lock=True)
    changes = given_changes(data, target=SectionRef)
    await courses_storage.update_in_order(ctx.db, item=section, changes=changes, at=ctx.now())
    lessons = await courses_storage.lessons_of_section(ctx.db, section_id=section.id)
    return SectionResult(section=section_public(section, lessons))


@operation(
    title="Delete section",
    permission=Permission.COURSES_WRITE,
    http=("DELETE", "/courses/{courseId}/sections/{sectionId}"),
    kind="delete",
)
async def delete_section(ctx: OperationContext, data: SectionRef) -> Deleted:
    """Delete a section with its lessons and their progress; later ones move up."""
    return await _remove(ctx, await _section(ctx, data, lock=True))


# ---- lessons


@operation(
    title="Create lesson",
    permission=Permission.COURSES_WRITE,
    http=("POST", "/courses/{courseId}/sections/{sectionId}/lessons", 201),
    input_rules=("videoUrl is a supported video link (see POST /videos/parse).",),
    kind="write",
)
async def create_lesson(ctx: OperationContext, data: CreateLessonInput) -> LessonResult:
    """Add a lesson to a section; later ones shift down."""
    section = await _section(ctx, data, lock=True)
    video = video_columns(data.video_url, field="videoUrl")
    lesson = await courses_storage.add_lesson(
        ctx.db,
        course_id=section.course_id,
        section_id=section.id,
        position=data.order,
        content=lesson_content(data, video),
        at=ctx.now(),
    )
    return LessonResult(lesson=lesson_public(lesson))


@operation(
    title="List lessons",
    permission=Permission.COURSES_READ,
    http=("GET", "/courses/{courseId}/sections/{sectionId}/lessons"),
    kind="read",
)
async def list_lessons(ctx: OperationContext, data: ListLessonsInput) -> LessonsResult:
    """A section's lessons, in order."""
    section = await _section(ctx, data)
    lessons = await courses_storage.lessons_of_section(ctx.db, section_id=section.id)
    if data.updated_after is not None:  # at most a section's lessons: filtered here
        lessons = sorted(
            (row for row in lessons if row.updated_at > data.updated_after),
            key=lambda row: (row.updated_at, row.id),
        )
    return LessonsResult(lessons=[lesson_public(row) for row in lessons])


@operation(
    title="Get lesson",
    permission=Permission.COURSES_READ,
    http=("GET", "/courses/{courseId}/sections/{sectionId}/lessons/{lessonId}"),
    kind="read",
)
async def get_lesson(ctx: OperationContext, data: LessonRef) -> LessonResult:
    """A lesson with its embed videoUrl and videoMeta."""
    return LessonResult(lesson=lesson_public(await _lesson(ctx, data)))


@operation(
    title="Update lesson",
    permission=Permission.COURSES_WRITE,
    http=("PATCH", "/courses/{courseId}/sections/{sectionId}/lessons/{lessonId}"),
    input_rules=("videoUrl is a supported video link (see POST /videos/parse).",),
    kind="write",
    idempotent=True,
)
async def update_lesson(ctx: OperationContext, data: UpdateLessonInput) -> LessonResult:
    """Update a lesson; order moves it in its section."""
    lesson = await _lesson(ctx, data, lock=True)
    changes = given_changes(data, target=LessonRef)
    if "video_url" in changes:
        changes.update(video_columns(changes.pop("video_url"), field="videoUrl"))
    await courses_storage.update_in_order(ctx.db, item=lesson, changes=changes, at=ctx.now())
    return LessonResult(lesson=lesson_public(lesson))


@operation(
    title="Delete lesson",
    permission=Permission.COURSES_WRITE,
    http=("DELETE", "/courses/{courseId}/sections/{sectionId}/lessons/{lessonId}"),
    kind="delete",
)
async def delete_lesson(ctx: OperationContext, data: LessonRef) -> Deleted:
    """Delete a lesson and its progress; later ones in its section move up."""
    return await _remove(ctx, await _lesson(ctx, data, lock=True))
