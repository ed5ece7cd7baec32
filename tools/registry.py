"""The one list of every operation: MCP tools, REST routes and CLI commands are all made from it."""

from __future__ import annotations

from tools.core.catalog import Operation, Transport, publish
from tools.domains import (
    achievements,
    api_keys,
    attention,
    audit_log,
    communities,
    community_insights,
    connected_apps,
    courses,
    curriculum,
    discussions,
    enrollments,
    event_feed,
    insights,
    overview,
    owner_password,
    producers,
    sign_ins,
    student_export,
    students,
    system,
    videos,
    webhooks,
)

__all__ = ["ALL_OPERATIONS", "OPERATIONS_BY_NAME", "TOOLS", "served_over"]

ALL_OPERATIONS: tuple[Operation, ...] = (
    system.whoami,
    videos.parse_video,
    system.list_categories,
    students.register_student,
    students.list_students,
    students.get_student,
    students.update_student,
    student_export.export_student,
    students.erase_student,
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
    enrollments.enroll_students,
    enrollments.list_enrollments,
    # Before get_enrollment: its REST path, /enrollments/attention, would match /enrollments/{enrollmentId}.
    attention.find_students_needing_attention,
    enrollments.get_enrollment,
    enrollments.update_progress,
    enrollments.delete_enrollment,
    achievements.list_certificates,
    achievements.list_achievements,
    insights.get_course_insights,
    communities.create_community,
    communities.list_communities,
    communities.get_community,
    community_insights.get_community_insights,
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
    insights.get_school_report,
    audit_log.list_audit_events,
    event_feed.list_events,
    webhooks.create_webhook,
    webhooks.list_webhooks,
    webhooks.update_webhook,
    webhooks.delete_webhook,
    webhooks.rotate_webhook_secret,
    webhooks.send_test_webhook,
    webhooks.list_webhook_deliveries,
    # A producer's owner, signed in, and the machine's operator.
    sign_ins.log_in,
    sign_ins.log_out,
    api_keys.create_key,
    api_keys.list_keys,
    api_keys.revoke_key,
    # The Producer Dashboard's own pages.
    overview.get_school_overview,
    audit_log.name_audit_targets,
    owner_password.change_password,
    connected_apps.review_app_authorization,
    connected_apps.answer_app_authorization,
    connected_apps.list_connected_apps,
    connected_apps.disconnect_app,
    producers.make_producer,
    producers.find_producer,
    producers.list_producers,
)

OPERATIONS_BY_NAME: dict[str, Operation] = {op.name: op for op in ALL_OPERATIONS}


def served_over(transport: Transport) -> tuple[Operation, ...]:
    """The operations a transport serves, in catalog order."""
    return tuple(op for op in ALL_OPERATIONS if transport in op.transports)


TOOLS: tuple[Operation, ...] = served_over("mcp")
"""The MCP tools: the operations an API key calls."""

publish(ALL_OPERATIONS)
