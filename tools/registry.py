"""The one list of every operation, and the one decision of which a caller may see and call."""

from __future__ import annotations

from tools import (
    achievements,
    audit,
    communities,
    courses,
    curriculum,
    discussions,
    enrollments,
    students,
    system,
    videos,
)
from tools.catalog import Operation
from tools.context import Principal
from tools.permissions import allows

__all__ = ["ALL_OPERATIONS", "OPERATIONS_BY_NAME", "is_visible", "visible_operations"]

ALL_OPERATIONS: tuple[Operation, ...] = (
    system.whoami,
    videos.parse_video,
    system.list_categories,
    students.register_student,
    students.list_students,
    students.get_student,
    students.update_student,
    courses.create_course,
    courses.list_courses,
    courses.get_course,
    courses.update_course,
    courses.delete_course,
    courses.publish_course,
    courses.unpublish_course,
    curriculum.create_section,
    curriculum.list_sections,
    curriculum.update_section,
    curriculum.delete_section,
    curriculum.create_lesson,
    curriculum.list_lessons,
    curriculum.get_lesson,
    curriculum.update_lesson,
    curriculum.delete_lesson,
    enrollments.enroll_student,
    enrollments.list_enrollments,
    enrollments.get_enrollment,
    enrollments.update_progress,
    enrollments.delete_enrollment,
    achievements.list_certificates,
    achievements.list_achievements,
    communities.create_community,
    communities.list_communities,
    communities.get_community,
    communities.update_community,
    communities.delete_community,
    discussions.create_thread,
    discussions.list_threads,
    discussions.get_thread,
    discussions.update_thread,
    discussions.delete_thread,
    discussions.create_comment,
    discussions.list_comments,
    discussions.update_comment,
    discussions.delete_comment,
    communities.add_member,
    communities.list_members,
    communities.remove_member,
    communities.add_media,
    communities.list_media,
    audit.list_audit_events,
)

OPERATIONS_BY_NAME: dict[str, Operation] = {op.name: op for op in ALL_OPERATIONS}


def is_visible(principal: Principal, op: Operation) -> bool:
    """Whether `principal` may see and call `op`: tools/list, tools/call and REST all ask this."""
    return allows(principal.grants, op.permission)


def visible_operations(principal: Principal) -> list[Operation]:
    return [op for op in ALL_OPERATIONS if is_visible(principal, op)]
