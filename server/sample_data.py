"""One of everything for a producer, made through the catalog: the tests' seeded tenants are
`create_sample_data` of a `Sample`. `operate` runs one catalog operation, for this, the demo
producer (`server.demo`) and the demo school (`server.demo_school`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.engine import Store
from storage.ids import utcnow
from tools.core.context import Clock, Principal
from tools.core.runner import run_operation
from tools.registry import OPERATIONS_BY_NAME

__all__ = ["Sample", "create_sample_data", "operate"]


@dataclass(frozen=True)
class Sample:
    """What `create_sample_data` makes, as the arguments of the operations that make it (all but
    the ids, which it fills in). Emails and slugs must be new: a sample made twice needs new ones."""

    students: tuple[dict[str, Any], ...]
    """register_student arguments; the first student enrolls, joins and comments."""
    course: dict[str, Any]
    """create_course arguments, with at least one section holding a lesson."""
    community: dict[str, Any]
    """create_community arguments."""
    thread: dict[str, Any]
    """create_thread arguments; the producer's owner posts it."""
    comment: str
    """The first student's comment on the thread."""
    media: dict[str, Any]
    """add_media arguments; the owner uploads it."""
    members: int = 1
    """How many of the students, from the first, join the community."""
    completed_lessons: int = 0
    """How many of the course's lessons, from the first, the first student has completed."""


async def operate(
    store: Store, principal: Principal, name: str, arguments: dict[str, Any], *, clock: Clock = utcnow
) -> dict[str, Any]:
    """Run the catalog operation `name` as `principal`, at `clock`'s time; its result as JSON data."""
    result = await run_operation(
        OPERATIONS_BY_NAME[name], arguments, store=store, principal=principal, clock=clock
    )
    return result.model_dump(mode="json", by_alias=True)


async def create_sample_data(
    store: Store, principal: Principal, *, owner_user_id: str, sample: Sample
) -> dict[str, str]:
    """Make `sample` for `principal`'s producer, whose owner user is `owner_user_id`, one catalog
    operation at a time. Returns the ids made, by the argument names that take them: `studentId`
    and `userId` (the first student), `otherStudentId` (the second, when there is one), `courseId`,
    `sectionId` and `lessonId` (the first), `enrollmentId`, `communityId`, `threadId`, and
    `commentId` and `parentId` (the comment)."""

    async def run(name: str, /, **arguments: Any) -> dict[str, Any]:
        return await operate(store, principal, name, arguments)

    students = [(await run("register_student", **student))["student"]["id"] for student in sample.students]
    course = (await run("create_course", **sample.course))["course"]
    lessons = [lesson for section in course["sections"] for lesson in section["lessons"]]
    enrollment = (await run("enroll_student", studentId=students[0], courseId=course["id"]))["enrollment"]
    for lesson in lessons[: sample.completed_lessons]:
        await run("update_progress", enrollmentId=enrollment["id"], lessonId=lesson["id"], completed=True)
    community = (await run("create_community", **sample.community))["community"]
    for student in students[: sample.members]:
        await run("add_member", communityId=community["id"], userId=student)
    thread = (await run("create_thread", communityId=community["id"], userId=owner_user_id, **sample.thread))[
        "thread"
    ]
    comment = await run(
        "create_comment",
        communityId=community["id"],
        threadId=thread["id"],
        userId=students[0],
        content=sample.comment,
    )
    await run("add_media", communityId=community["id"], userId=owner_user_id, **sample.media)
    ids = {
        "studentId": students[0],
        "userId": students[0],
        "courseId": course["id"],
        "sectionId": course["sections"][0]["id"],
        "lessonId": lessons[0]["id"],
        "enrollmentId": enrollment["id"],
        "communityId": community["id"],
        "threadId": thread["id"],
        "commentId": comment["comment"]["id"],
        "parentId": comment["comment"]["id"],
    }
    if len(students) > 1:
        ids["otherStudentId"] = students[1]
    return ids
