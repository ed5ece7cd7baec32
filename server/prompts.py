"""MCP prompts for the owner's recurring work, and completion of their id arguments.

Each prompt (`PROMPTS`) declares the tools it tells the model to call, and is listed, rendered and
completed only for a caller that may call every one of them: the same decision as tool
visibility (`tools.core.permissions.may_call`), taken per request on the caller authenticated as
`tools/list` authenticates it (a revoked key stops at once). A prompt the caller may not use is
answered exactly like one that does not exist.

`prompts/get` instructs the model: which tools to call, with which arguments, and what to write.
It reads only what makes the text concrete and checks the ids it names (the course's or
community's name, the course's launch gaps, the count of stalled learners), through
`run_operation` as the caller (the one way in: permission, tenancy, rate limit), and never
embeds lists of people or posts: the model reads those itself, fresh, through the tools.

`completion/complete` offers the caller's own course and community ids (matching the typed text
on the id or on the title's or name's words) through the list tools, as the caller: another
producer's ids are never seen, and a key without `courses:read` gets no course ids.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts import Prompt
from mcp.server.mcpserver.prompts.base import PromptArgument
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, Completion, ListPromptsResult

from server.listings import only_listed
from server.published_tools import PublishedTool, published_tools
from tools.core.errors import BadRequest, BlohkoError, NotFound, NotPermitted
from tools.core.permissions import may_call
from tools.core.principal import Principal

if TYPE_CHECKING:
    from server.runtime import Runtime

__all__ = ["PROMPTS", "BlohkoPrompt", "Resolve", "RunAs", "add_prompts", "usable_prompts"]

Resolve = Callable[[ServerRequestContext[Any, Any]], Awaitable[Principal]]
"""Authenticates a request's caller (`server.mcp_app._resolver`)."""

RunAs = Callable[..., Awaitable[Any]]
"""`run_as(principal, tool_name, arguments)`: the tool's operation through `run_operation`."""

MAX_COMPLETIONS = 100
"""MCP's cap on the values of one completion."""

COMPLETION_PAGES = 5
"""At most this many list pages (of 100) are read to answer one completion: a completion is
asked on every keystroke, so its cost is bounded whatever the school's size."""


class _RuntimeSource(Protocol):
    async def get(self) -> Runtime: ...


# ---------------------------------------------------------------------------------------------
# Arguments: MCP prompt arguments are strings; each kind parses its own and says what is wrong.


@dataclass(frozen=True)
class Argument:
    name: str
    description: str
    required: bool = False
    completes: str | None = None
    """The list tool whose ids complete it (`list_courses`, `list_communities`), if any."""
    days: tuple[int, int, int] | None = None
    """For a number of days: (smallest, largest, default)."""

    @property
    def summary(self) -> str:
        """The argument as docs/prompts.md's table shows it."""
        if self.required:
            return f"`{self.name}` (required)"
        if self.days:
            low, high, default = self.days
            return f"`{self.name}` ({low}-{high}, default {default})"
        return f"`{self.name}` (optional)"

    def parse(self, raw: str | None) -> str | int | None:
        """The value, or None when absent; raises ValueError with what is wrong."""
        if raw is None or not raw.strip():
            if self.required:
                raise ValueError(f"{self.name} is required")
            return self.days[2] if self.days else None
        value = raw.strip()
        if self.days:
            low, high, _ = self.days
            if not value.isdigit() or not low <= int(value) <= high:
                raise ValueError(f"{self.name} must be a whole number from {low} to {high}, not {raw!r}")
            return int(value)
        if len(value) > 100:
            raise ValueError(f"{self.name} must be an id of at most 100 characters")
        return value


def _course_id(required: bool, purpose: str) -> Argument:
    return Argument(
        "courseId", f"The course {purpose} (an id; completion offers yours).", required, "list_courses"
    )


def _community_id() -> Argument:
    return Argument(
        "communityId", "The community (an id; completion offers yours).", True, "list_communities"
    )


def _days(name: str, description: str, low: int, high: int, default: int) -> Argument:
    return Argument(name, f"{description} ({low}-{high}, default {default}).", days=(low, high, default))


# ---------------------------------------------------------------------------------------------
# Rendering: what a prompt's text may read, as the caller.


@dataclass(frozen=True)
class Rendering:
    """What a prompt's text is made from: its parsed arguments, now, and the caller's tools."""

    arguments: Mapping[str, Any]
    now: datetime
    principal: Principal
    run_as: RunAs
    reads: list[str] = field(default_factory=list)
    """The tools read to render the text (a test holds them to the prompt's declared tools)."""

    async def read(self, tool: str, arguments: dict[str, Any], *, argument: str) -> dict[str, Any]:
        """A read through `run_operation`; an id it does not find is the named argument's error."""
        self.reads.append(tool)
        try:
            result = await self.run_as(self.principal, tool, arguments)
        except (NotFound, BadRequest) as error:
            named = f"{argument} {arguments[argument]!r}" if argument in arguments else argument
            raise MCPError(code=INVALID_PARAMS, message=f"{named}: {error.message}") from None
        except BlohkoError as error:
            raise MCPError(code=INTERNAL_ERROR, message=f"{error.code}: {error.message}") from None
        return result.model_dump(mode="json", by_alias=True)

    def window_start(self, days: int) -> datetime:
        """The first midnight (UTC) of the last `days` UTC days, today included: the window of
        `get_community_insights`."""
        return datetime.combine(self.now.date() - timedelta(days=days - 1), time.min, tzinfo=UTC)


def _json(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _community(rendering: Rendering) -> dict[str, Any]:
    community_id = rendering.arguments["communityId"]
    answer = await rendering.read("get_community", {"communityId": community_id}, argument="communityId")
    return answer["community"]


async def _weekly_digest(rendering: Rendering) -> str:
    community = await _community(rendering)
    days: int = rendering.arguments["days"]
    since = rendering.window_start(days)
    insights = {"communityId": community["id"], "days": days}
    threads = {"communityId": community["id"], "since": _iso(since), "limit": 100}
    return f"""Write the digest of the community "{community["name"]}" ({community["id"]}) for the last {days} days (UTC), from {since:%Y-%m-%d} to today.

1. Call get_community_insights with {_json(insights)}: members now and new, threads and comments per day, the most active posters, and the threads still waiting for an answer.
2. Call list_threads with {_json(threads)}: the threads started in the period, pinned first. Open the two or three liveliest with get_thread (communityId and threadId) to quote a line from each.
3. Write the digest: a headline with the period's numbers and how many joined; the threads worth reading, one line each; thanks to the most active members by name; the questions still waiting, as an invitation to answer them.

Keep it under 300 words, warm and concrete, with only what the tools returned. It is a draft for the owner: do not post it."""


async def _welcome_new_members(rendering: Rendering) -> str:
    community = await _community(rendering)
    days: int = rendering.arguments["days"]
    since = rendering.window_start(days)
    members = {"communityId": community["id"], "updatedAfter": _iso(since), "limit": 100}
    thread = {
        "communityId": community["id"],
        "title": "...",
        "content": "...",
        "userId": "<ownerUserId>",
        "idempotencyKey": f"welcome-{community['id']}-{rendering.now:%Y-%m-%d}",
    }
    return f"""Welcome the members who joined the community "{community["name"]}" ({community["id"]}) in the last {days} days (UTC), since {since:%Y-%m-%d}.

1. Call list_members with {_json(members)} (the next page while pagination.hasMore) and keep the members whose joinedAt is on or after {_iso(since)}: the list also holds members whose role changed. If nobody joined, say so and stop: post nothing.
2. Call whoami: producer.ownerUserId is the owner, who signs the welcome.
3. Draft one welcome thread: a friendly title, a greeting naming each new member, what the community is for, and one easy first step (introduce yourself, answer a pinned thread). Show the draft to the owner.
4. Only when the owner approves it, call create_thread with {_json(thread)}, the approved title and content, and the owner's id as userId. The idempotencyKey makes a retry safe: it never posts twice."""


async def _reengage_learners(rendering: Rendering) -> str:
    inactive_days: int = rendering.arguments["inactiveDays"]
    query: dict[str, Any] = {"inactiveDays": inactive_days, "limit": 20}
    course_id = rendering.arguments.get("courseId")
    if course_id is not None:
        query["courseId"] = course_id
    first = await rendering.read(
        "find_students_needing_attention", {**query, "limit": 1}, argument="courseId"
    )
    stalled = first["pagination"]["total"]
    scope = f"the course {course_id}" if course_id else "every course"
    return f"""Help the owner re-engage the learners of {scope} who have made no progress for {inactive_days} days or more: {stalled} enrollment(s) right now.

1. Call find_students_needing_attention with {_json(query)}; while pagination.hasMore, call it again with the next page (at most 5 pages). Each row has the student's name, the course, progressPercent, daysSilent, currentStreak and nextLesson.
2. For each learner, draft a short personal message (at most 80 words): their first name, the course, how far they got, the next lesson by its title, and one concrete, encouraging next step. For a learner who never started (lastActivityAt null), write a getting-started note instead.
3. Group the drafts by course, longest silence first, and hand them to the owner to send: Blohko sends no messages itself.

Do not invent progress or lessons the tool did not return."""


def _launch_gaps(course: dict[str, Any]) -> list[str]:
    """What a course still lacks before launch, from `get_course`'s answer."""
    gaps = [
        f"no {label}"
        for field, label in (
            ("shortDescription", "short description"),
            ("description", "description"),
            ("thumbnailUrl", "thumbnail"),
            ("level", "level"),
        )
        if not course[field]
    ]
    lessons = [lesson for section in course["sections"] for lesson in section["lessons"]]
    empty_sections = [section["title"] for section in course["sections"] if not section["lessons"]]
    if not lessons:
        gaps.append("no lesson (publishing needs one)")
    if empty_sections:
        gaps.append(f"{len(empty_sections)} section(s) without lessons: " + ", ".join(empty_sections))
    if without_video := [lesson["title"] for lesson in lessons if not lesson["videoUrl"]]:
        gaps.append(f"{len(without_video)} lesson(s) without a video: " + ", ".join(without_video[:10]))
    if without_duration := [lesson["title"] for lesson in lessons if not lesson["duration"]]:
        gaps.append(
            f"{len(without_duration)} lesson(s) without a duration: " + ", ".join(without_duration[:10])
        )
    if lessons and not any(lesson["isPreview"] for lesson in lessons):
        gaps.append("no free preview lesson")
    return gaps


async def _launch_course(rendering: Rendering) -> str:
    course_id = rendering.arguments["courseId"]
    answer = await rendering.read("get_course", {"courseId": course_id}, argument="courseId")
    course = answer["course"]
    state = f"published since {course['publishedAt'][:10]}" if course["published"] else "a draft"
    price = "free" if course["isFree"] else f"priced at {course['price']} cents"
    gaps = _launch_gaps(course)
    found = "\n".join(f"- {gap}" for gap in gaps) if gaps else "- nothing: every item below is in place"
    ref = {"courseId": course["id"]}
    return f"""Take the course "{course["title"]}" ({course["id"]}) from curriculum to launch. It is {state}, {price}: {course["sectionCount"]} section(s), {course["lessonCount"]} lesson(s), {course["totalDuration"] // 60} minutes.

Gaps found just now:
{found}

Work through this checklist with the owner, one item at a time; ask before each change.
1. Curriculum: call get_course with {_json(ref)}; every section has lessons in a sensible order, and every lesson a clear title, a duration (seconds) and a video. Fix lessons with update_lesson (courseId, sectionId, lessonId; videoUrl is parsed for YouTube, Vimeo or a direct file).
2. One or two early lessons are free previews (update_lesson with isPreview true).
3. The page: title, shortDescription (one line), description, thumbnailUrl, level and categoryId (list_categories gives the ids); set them with update_course and {_json(ref)}.
4. Price: price in cents, or isFree true (update_course).
5. Publish: when the owner confirms, call publish_course with {_json(ref)}. It refuses a course without lessons (conflict); fix that and retry.
Finish with a short summary of what changed and what the owner still wants to do."""


# ---------------------------------------------------------------------------------------------
# The prompts.


@dataclass(frozen=True)
class BlohkoPrompt:
    name: str
    title: str
    description: str
    arguments: tuple[Argument, ...]
    tools: tuple[str, ...]
    """Every tool the text tells the model to call: the caller must may_call each one."""
    render: Callable[[Rendering], Awaitable[str]]

    def usable_by(self, principal: Principal, tools: Mapping[str, PublishedTool]) -> bool:
        return all(may_call(principal, tools[name]) for name in self.tools)

    def parse(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """The arguments parsed, or INVALID_PARAMS naming every problem."""
        if raw is not None and not isinstance(raw, Mapping):
            raise MCPError(
                code=INVALID_PARAMS, message=f"Invalid arguments for prompt {self.name}: not an object"
            )
        raw = dict(raw or {})
        known = {argument.name for argument in self.arguments}
        problems = [f"unknown argument {name!r}" for name in raw if name not in known]
        parsed: dict[str, Any] = {}
        for argument in self.arguments:
            value = raw.get(argument.name)
            try:
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{argument.name} must be a string")
                parsed[argument.name] = argument.parse(value)
            except ValueError as problem:
                problems.append(str(problem))
        if problems:
            message = f"Invalid arguments for prompt {self.name}: " + "; ".join(problems)
            raise MCPError(code=INVALID_PARAMS, message=message)
        return parsed


PROMPTS: tuple[BlohkoPrompt, ...] = (
    BlohkoPrompt(
        name="weekly_community_digest",
        title="Weekly community digest",
        description="Draft a digest of a community's last days: numbers, threads worth reading, "
        "active members, unanswered questions.",
        arguments=(_community_id(), _days("days", "Days to cover, today included", 1, 90, 7)),
        tools=("get_community", "get_community_insights", "list_threads", "get_thread"),
        render=_weekly_digest,
    ),
    BlohkoPrompt(
        name="welcome_new_members",
        title="Welcome new members",
        description="Draft a welcome thread for a community's recent joiners, and post it as the "
        "owner once approved.",
        arguments=(_community_id(), _days("days", "Joined in the last days, today included", 1, 90, 7)),
        tools=("whoami", "get_community", "list_members", "create_thread"),
        render=_welcome_new_members,
    ),
    BlohkoPrompt(
        name="reengage_learners",
        title="Re-engage learners needing attention",
        description="Draft personal nudges for learners who stalled, naming each one's next lesson.",
        arguments=(
            _course_id(False, "to look at; omitted: every course"),
            _days("inactiveDays", "Days without progress", 1, 3650, 14),
        ),
        tools=("find_students_needing_attention",),
        render=_reengage_learners,
    ),
    BlohkoPrompt(
        name="launch_course",
        title="Launch a course",
        description="Walk a course from curriculum to publish: a checklist, with the gaps found now.",
        arguments=(_course_id(True, "to launch"),),
        tools=("get_course", "list_categories", "update_lesson", "update_course", "publish_course"),
        render=_launch_course,
    ),
)


def usable_prompts(principal: Principal) -> list[BlohkoPrompt]:
    """The prompts `principal` may use, in declaration order."""
    tools = {tool.name: tool for tool in published_tools()}
    return [prompt for prompt in PROMPTS if prompt.usable_by(principal, tools)]


# ---------------------------------------------------------------------------------------------
# Completion: the caller's own ids, through the list tools.


def _matches(row: dict[str, Any], label: str, needle: str) -> bool:
    if not needle:
        return True
    text = str(row.get(label) or "").casefold()
    return (
        row["id"].casefold().startswith(needle)
        or text.startswith(needle)
        or any(word.startswith(needle) for word in text.split())
    )


async def _complete_ids(principal: Principal, run_as: RunAs, tool: str, typed: str) -> Completion:
    """Up to 100 of the caller's ids (from `tool`) whose id, or title's or name's words, start with
    `typed`; `total` when it is known (every row read, or nothing typed)."""
    label = "title" if tool == "list_courses" else "name"
    needle = typed.strip().casefold()
    query: dict[str, Any] = {"limit": 100}
    if (
        tool == "list_courses"
        and needle
        and not needle.startswith("course_")
        and not "course_".startswith(needle)
    ):
        query["search"] = typed.strip()[:200]  # titles containing it: fewer pages to read
    matches: list[str] = []
    read_all = False
    try:
        for page in range(1, COMPLETION_PAGES + 1):
            answer = await run_as(principal, tool, {**query, "page": page})
            matches += [
                row.id for row in answer.data if _matches(row.model_dump(by_alias=True), label, needle)
            ]
            if not needle:  # every row matches: the first page and its total say it all
                return Completion(
                    values=matches[:MAX_COMPLETIONS],
                    total=answer.pagination.total,
                    has_more=answer.pagination.total > len(matches),
                )
            if not answer.pagination.has_more:
                read_all = True
                break
            if len(matches) > MAX_COMPLETIONS:
                break  # more than can be sent: no need to count them all
    except NotPermitted:
        return Completion(values=[])  # the key may not read them: it learns nothing, not even that
    except BlohkoError as error:
        raise MCPError(code=INTERNAL_ERROR, message=f"{error.code}: {error.message}") from None
    return Completion(
        values=matches[:MAX_COMPLETIONS],
        total=len(matches) if read_all else None,
        has_more=len(matches) > MAX_COMPLETIONS or not read_all,
    )


# ---------------------------------------------------------------------------------------------
# Wiring into the SDK server.

_caller: ContextVar[Principal] = ContextVar("blohko_prompt_caller")


def _unknown(name: object) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name}")


def _sdk_prompt(prompt: BlohkoPrompt, runtimes: _RuntimeSource, run_as: RunAs) -> Prompt:
    async def render(**raw: Any) -> str:
        runtime = await runtimes.get()
        rendering = Rendering(prompt.parse(raw), runtime.clock(), _caller.get(), run_as)
        return await prompt.render(rendering)

    return Prompt(
        name=prompt.name,
        title=prompt.title,
        description=f"{prompt.description} Tools: {', '.join(prompt.tools)}.",
        arguments=[
            PromptArgument(name=a.name, description=a.description, required=a.required)
            for a in prompt.arguments
        ],
        fn=render,
        context_kwarg=None,
    )


def add_prompts(server: MCPServer, runtimes: _RuntimeSource, *, resolve: Resolve, run_as: RunAs) -> None:
    """Serve `PROMPTS` and complete their id arguments on `server`, per caller."""
    by_name = {prompt.name: prompt for prompt in PROMPTS}
    for prompt in PROMPTS:
        server.add_prompt(_sdk_prompt(prompt, runtimes, run_as))

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion:
        # An unknown prompt, or one the caller may not use, completes to nothing (the same answer
        # for both). Completion is a typing aid: the suite's `completion-complete` asks about a
        # prompt no server but its own has, and expects an answer, not an error.
        principal = _caller.get()
        prompt = by_name.get(getattr(ref, "name", ""))
        if (
            getattr(ref, "type", None) != "ref/prompt"
            or prompt is None
            or prompt not in usable_prompts(principal)
        ):
            return Completion(values=[])
        declared = next((a for a in prompt.arguments if a.name == argument.name), None)
        if declared is None or declared.completes is None:
            return Completion(values=[])
        return await _complete_ids(principal, run_as, declared.completes, argument.value)

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext):
        if ctx.method not in ("prompts/list", "prompts/get", "completion/complete"):
            return await call_next(ctx)
        if ctx.method != "prompts/list":
            await runtimes.get()  # they read through operations: the loaded runtime
        principal = await resolve(ctx)
        usable = {prompt.name for prompt in usable_prompts(principal)}
        if ctx.method == "prompts/list":
            return only_listed(
                await call_next(ctx), ListPromptsResult, "prompts", "name", usable.__contains__
            )
        if ctx.method == "prompts/get":
            params = ctx.params or {}
            name = params.get("name")
            if name not in usable:
                raise _unknown(name)  # a prompt the key may not use cannot be told from none
            by_name[name].parse(params.get("arguments"))  # before the SDK's own, vaguer check
        token = _caller.set(principal)
        try:
            return await call_next(ctx)
        finally:
            _caller.reset(token)

    server.middleware.append(middleware)
