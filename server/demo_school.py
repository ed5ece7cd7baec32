"""The demo school `blohko demo` makes: a small school with a month of history, so that a newcomer's
first look at the dashboard (its overview chart, its activity log) and an agent's first calls
find something to show.

Four courses (three published) with curricula of real-looking YouTube, Vimeo and direct video
URLs; three dozen students who enrolled over the last 30 days and worked through their lessons
at their own pace, some to the end (a certificate each); a community with threads and replies,
and a second smaller one. Everything is made through the catalog's operations, as an agent would
make it, each run with a clock set to the moment it happened (`tools.core.context.Clock`), so the
enrollments, lessons completed, certificates, posts and their audit records are dated over the month.

The school is the same on every run (a fixed seed): the same names, titles and story, placed
relative to the moment it is made. Ids are new each time.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from server.sample_data import operate
from storage.engine import Store
from storage.ids import utcnow
from tools.core.context import Principal

__all__ = ["DEMO_COURSES", "DEMO_SEED", "DEMO_STUDENT_COUNT", "DemoSchool", "create_demo_school"]

DEMO_SEED = 20260101
"""The seed of the school's story: who enrolls where, when, and how far each gets."""
DEMO_STUDENT_COUNT = 32
_HISTORY_DAYS = 30
"""The story spans the overview's default window: the last 30 days."""

_FIRST_NAMES = (
    "Jane",
    "Ravi",
    "Amara",
    "Lucas",
    "Sofia",
    "Kenji",
    "Maya",
    "Omar",
    "Elena",
    "Tomás",
    "Priya",
    "Noah",
    "Aisha",
    "Mateo",
    "Hana",
    "Daniel",
    "Zara",
    "Leon",
    "Ines",
    "Kwame",
    "Chloe",
    "Yusuf",
    "Mei",
    "Felix",
)
_LAST_NAMES = (
    "Smith",
    "Patel",
    "Okafor",
    "Moreau",
    "Rossi",
    "Tanaka",
    "Cohen",
    "Haddad",
    "Novak",
    "García",
    "Iyer",
    "Berg",
    "Mensah",
    "Silva",
    "Kim",
    "Schmidt",
    "Ahmed",
    "Dubois",
    "Costa",
    "Nakamura",
    "Walsh",
    "Yilmaz",
    "Chen",
    "Larsen",
)
_BIOS = (
    "Frontend developer learning TypeScript.",
    "Data analyst moving into data science.",
    "Product designer who wants to prototype in code.",
    "Back-end engineer, curious about the front end.",
    "Career changer: ten years in retail, now learning to code.",
    "Student of statistics.",
    None,
    None,
)


def _lesson(title: str, minutes: int, video_url: str, *, preview: bool = False) -> dict[str, Any]:
    return {
        "title": title,
        "duration": minutes * 60,
        "videoUrl": video_url,
        **({"isPreview": True} if preview else {}),
    }


DEMO_COURSES: tuple[dict[str, Any], ...] = (
    {
        "title": "Mastering TypeScript",
        "slug": "demo-mastering-typescript",
        "shortDescription": "Learn TypeScript from scratch, from types to generics.",
        "price": 4999,
        "level": "intermediate",
        "categoryId": "cat_web_development",
        "published": True,
        "sections": [
            {
                "title": "Getting Started",
                "lessons": [
                    _lesson(
                        "What is TypeScript?", 10, "https://www.youtube.com/watch?v=zQnBQ4tB3ZA", preview=True
                    ),
                    _lesson("Setting Up Your Environment", 8, "https://vimeo.com/76979871"),
                ],
            },
            {
                "title": "Type System Deep Dive",
                "lessons": [
                    _lesson("Primitive Types", 12, "https://youtu.be/ahCwqrYpIuM"),
                    _lesson("Unions and Narrowing", 15, "https://www.youtube.com/watch?v=d56mG7DezGs"),
                    _lesson(
                        "Interfaces and Type Aliases", 14, "https://cdn.example.com/typescript/interfaces.mp4"
                    ),
                ],
            },
            {
                "title": "Generics in Practice",
                "lessons": [
                    _lesson("Generic Functions", 16, "https://vimeo.com/148751763"),
                    _lesson(
                        "Typing a Real API Client", 22, "https://cdn.example.com/typescript/api-client.mp4"
                    ),
                ],
            },
        ],
    },
    {
        "title": "Python for Data Analysis",
        "slug": "demo-python-data-analysis",
        "shortDescription": "pandas, plotting and a first real analysis, step by step.",
        "price": 5999,
        "level": "beginner",
        "categoryId": "cat_data_science",
        "published": True,
        "sections": [
            {
                "title": "Foundations",
                "lessons": [
                    _lesson(
                        "Why Python for Data?", 7, "https://www.youtube.com/watch?v=r-uOLxNrNk8", preview=True
                    ),
                    _lesson("Notebooks and Your First DataFrame", 14, "https://youtu.be/vmEHCJofslg"),
                ],
            },
            {
                "title": "Cleaning Data",
                "lessons": [
                    _lesson("Missing Values", 12, "https://vimeo.com/253989945"),
                    _lesson("Joining Tables", 15, "https://cdn.example.com/python-data/joins.mp4"),
                ],
            },
            {
                "title": "Telling the Story",
                "lessons": [
                    _lesson("Charts that Explain", 18, "https://www.youtube.com/watch?v=a9UrKTVEeZA"),
                    _lesson(
                        "Project: A City's Bike Trips",
                        25,
                        "https://cdn.example.com/python-data/bike-trips.webm",
                    ),
                ],
            },
        ],
    },
    {
        "title": "UX Design Fundamentals",
        "slug": "demo-ux-design-fundamentals",
        "shortDescription": "Research, wireframes and usability tests for people who build products.",
        "price": 3999,
        "level": "beginner",
        "categoryId": "cat_design",
        "published": True,
        "sections": [
            {
                "title": "Understanding Users",
                "lessons": [
                    _lesson("What UX Is (and Is Not)", 9, "https://vimeo.com/90509568", preview=True),
                    _lesson("Interviewing Users", 16, "https://www.youtube.com/watch?v=MT4Ig2uqjTc"),
                ],
            },
            {
                "title": "From Idea to Prototype",
                "lessons": [
                    _lesson("Wireframes on Paper", 11, "https://youtu.be/qpH7-KFWZRI"),
                    _lesson("A Clickable Prototype", 19, "https://cdn.example.com/ux/prototype.mp4"),
                    _lesson("Running a Usability Test", 17, "https://vimeo.com/336812660"),
                ],
            },
        ],
    },
    {
        "title": "Docker in Practice",
        "slug": "demo-docker-in-practice",
        "shortDescription": "Containers for developers: images, compose and deploys. Coming soon.",
        "price": 4499,
        "level": "advanced",
        "categoryId": "cat_web_development",
        "published": False,
        "sections": [
            {
                "title": "Images",
                "lessons": [
                    _lesson("Your First Dockerfile", 13, "https://www.youtube.com/watch?v=pTFZFxd4hOI"),
                    _lesson("Smaller, Faster Images", 15, "https://cdn.example.com/docker/small-images.mp4"),
                ],
            },
            {
                "title": "Compose",
                "lessons": [_lesson("A Web App and Its Database", 18, "https://vimeo.com/412393722")],
            },
        ],
    },
)
"""The catalog: create_course arguments. The last is a draft, so the overview shows one."""

_COMMUNITIES = (
    {
        "name": "Demo Academy Lounge",
        "slug": "demo-academy-lounge",
        "description": "Every student of Blohko Demo Academy: introductions, questions and wins.",
    },
    {
        "name": "TypeScript Learners",
        "slug": "demo-typescript-learners",
        "description": "Study group of Mastering TypeScript.",
    },
)

_THREADS = (
    # (community index, author: None for the owner or a student's index, title, content, pinned, comments)
    # A comment is (author index, content, the index of the comment it replies to, or None).
    (
        0,
        None,
        "Welcome! Introduce yourself",
        "Tell us who you are, what you are learning and what you want to build.",
        True,
        (
            (0, "Hi, I'm Jane: frontend developer, here for TypeScript.", None),
            (1, "Ravi, data analyst. Working through Python for Data Analysis.", None),
            (2, "Welcome Ravi! The bike trips project is great.", 1),
            (5, "Kenji here. Designer by day, learning to prototype in code.", None),
            (3, "Lucas: photographer, finally learning some Python.", None),
        ),
    ),
    (
        0,
        4,
        "Study buddies for the evening sessions?",
        "I study after 8pm CET. Anyone want to pair on the exercises?",
        False,
        (
            (6, "Count me in, Tuesdays and Thursdays work for me.", None),
            (4, "Great, let's start this Thursday.", 0),
            (9, "I'm in too, from Lisbon.", 0),
        ),
    ),
    (
        0,
        7,
        "How long did the Python course take you?",
        "Planning my month: how many hours a week did you need?",
        False,
        (
            (1, "About four hours a week; the project took a weekend.", None),
            (8, "Same here, a bit more for the charts lesson.", 0),
        ),
    ),
    (
        1,
        None,
        "Weekly Discussion: What did you learn this week?",
        "Share your wins, challenges, and insights...",
        True,
        (
            (0, "Finished the first lesson: the type annotations finally make sense.", None),
            (10, "Narrowing with unions clicked for me this week.", None),
            (0, "Same! The discriminated unions example helped.", 1),
        ),
    ),
    (
        1,
        11,
        "Generics: when is it too much?",
        "My types are getting hard to read. Where do you draw the line?",
        False,
        (
            (0, "When the call site stops being obvious, I simplify.", None),
            (12, "The API client lesson covers exactly this.", 0),
        ),
    ),
    (
        # Still waiting for an answer (only its author wrote since): what get_community_insights
        # lists as waiting, so a school's owner sees one on the first day.
        1,
        12,
        "strictNullChecks broke my build: where do I start?",
        "Turning it on gave me 140 errors. Fix them file by file, or turn it off again?",
        False,
        ((12, "Update: down to 90 by adding guards, but some feel wrong.", None),),
    ),
)


@dataclass(frozen=True)
class DemoSchool:
    """What `create_demo_school` made: counts, for the message and the tests."""

    courses: int
    students: int
    enrollments: int
    certificates: int
    operations: int


_REGULARS = 13
"""The first students join in the first days and are in the lounge: the threads' authors are among them."""
_TYPESCRIPT_REGULARS = {0, 10, 11, 12}
"""Regulars who post in the TypeScript community."""

Run = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(order=True)
class _Step:
    """Something that happens at `at` in the story; `order` breaks ties in the order they were planned."""

    at: datetime
    order: int
    run: Callable[[], Awaitable[None]] = field(compare=False)


def _students(rng: random.Random) -> list[dict[str, Any]]:
    """register_student arguments: the first of the names in order, the rest drawn. No password:
    a demo student signs in nowhere, and each hash would cost the demo a twentieth of a second."""
    names = [f"{first} {last}" for first, last in zip(_FIRST_NAMES, _LAST_NAMES, strict=True)][:_REGULARS]
    while len(names) < DEMO_STUDENT_COUNT:
        name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
        if name not in names:
            names.append(name)
    students = []
    for name in names:
        email = (
            unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower().replace(" ", ".")
            + "@example.com"
        )
        bio = rng.choice(_BIOS)
        students.append({"name": name, "email": email, **({"bio": bio} if bio else {})})
    return students


async def create_demo_school(
    store: Store, principal: Principal, *, owner_user_id: str, now: datetime | None = None
) -> DemoSchool:
    """Make the demo school for `principal`'s producer (whose owner user is `owner_user_id`), its
    story ending at `now` (default: the current time). One catalog operation at a time, each run
    at the moment it happens in the story, in the story's order."""
    now = now or utcnow()
    last = now - timedelta(minutes=5)
    first_day = (now - timedelta(days=_HISTORY_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(DEMO_SEED)
    operations = 0

    async def run(at: datetime, name: str, /, **arguments: Any) -> dict[str, Any]:
        nonlocal operations
        operations += 1
        return await operate(store, principal, name, arguments, clock=lambda: at)

    def moment(day: int, hour: float) -> datetime:
        """A time on day `day` of the story (0: the first of the window) around `hour`, never later than `last`."""
        return min(first_day + timedelta(days=day, hours=hour, minutes=rng.randrange(45)), last)

    # Day 0: the owner builds the catalog and the communities.
    courses = [
        (await run(moment(0, 9 + index * 0.75), "create_course", **course))["course"]
        for index, course in enumerate(DEMO_COURSES)
    ]
    published = [course for course in courses if course["published"]]
    typescript = courses[0]["id"]
    lessons = {
        course["id"]: [lesson["id"] for section in course["sections"] for lesson in section["lessons"]]
        for course in courses
    }
    communities = [
        (await run(moment(0, 13 + index), "create_community", **community))["community"]["id"]
        for index, community in enumerate(_COMMUNITIES)
    ]
    lounge, study_group = communities
    await run(
        moment(0, 15),
        "add_media",
        communityId=lounge,
        userId=owner_user_id,
        type="video",
        title="Welcome call",
        url="https://cdn.example.com/welcome.mp4",
        fileName="welcome.mp4",
        fileSize=48_234_496,
        duration=1260,
    )

    ids: dict[int, str] = {}
    steps: list[_Step] = []

    def plan(at: datetime, action: Callable[[], Awaitable[None]]) -> None:
        steps.append(_Step(at, len(steps), action))

    # Each student's month: signs up on some day, enrolls in one course or two, then completes a
    # lesson every day or few; some reach the end (a certificate), others stall on the way.
    enrollments = 0
    for index, student in enumerate(_students(rng)):
        regular = index < _REGULARS
        day = rng.randint(1, 4) if regular else rng.randint(1, _HISTORY_DAYS - 3)
        hour = rng.choice((7, 8, 12, 18, 19, 20))
        plan(moment(day, hour), _register(run, moment(day, hour), student, ids, index))
        chosen = [courses[0]] if index in _TYPESCRIPT_REGULARS else []
        chosen += [
            course
            for course in rng.sample(published, k=1 if rng.random() < 0.7 else 2)
            if course not in chosen
        ]
        pace = rng.choice((1, 1, 2, 2, 3, 4))  # days between study sessions
        stamina = rng.random()  # how far they get: above 0.7, to the end
        for position, course in enumerate(chosen):
            enrolled = moment(day, hour + 1) if position == 0 else moment(day + rng.randint(2, 6), hour + 1)
            todo = lessons[course["id"]]
            done = len(todo) if stamina > 0.7 else round(len(todo) * stamina)
            sessions, at = [], enrolled
            for lesson in range(done):  # at about the same hour as they enrolled: their study time
                at += timedelta(
                    days=0 if lesson == 0 else max(1, pace + rng.choice((-1, 0, 0, 1))),
                    minutes=rng.randrange(10, 40),
                )
                sessions.append(at)
            studied = [(at, todo[lesson]) for lesson, at in enumerate(sessions) if at <= last]
            if enrolled < last:
                enrollments += 1
                plan(enrolled, _enroll_and_study(run, enrolled, ids, index, course["id"], studied))
        joining = moment(day, hour + 0.8)
        if regular or rng.random() < 0.6:
            plan(joining, _join(run, joining, lounge, ids, index))
        if index in _TYPESCRIPT_REGULARS or (
            not regular and typescript in {course["id"] for course in chosen}
        ):
            plan(joining, _join(run, joining, study_group, ids, index))

    # The conversations, once their regulars have joined (by day 4, an hour after signing up).
    for community, author, title, content, pinned, comments in _THREADS:
        at = moment(
            rng.randint(5, 7) if pinned else rng.randint(8, _HISTORY_DAYS - 8), rng.choice((9, 14, 19))
        )
        gaps = [timedelta(hours=rng.uniform(1, 20)) for _ in comments]
        plan(
            at,
            _discussion(
                run,
                at,
                communities[community],
                owner_user_id,
                ids,
                author,
                title,
                content,
                pinned,
                comments,
                gaps,
            ),
        )

    # In the story's order: a student's enrollment after their sign-up, a reply after its comment.
    for step in sorted(steps):
        await step.run()
    certificates = (await run(now, "list_certificates", limit=1))["pagination"]["total"]
    return DemoSchool(
        courses=len(courses),
        students=len(ids),
        enrollments=enrollments,
        certificates=certificates,
        operations=operations,
    )


def _register(
    run: Run, at: datetime, student: dict[str, Any], ids: dict[int, str], index: int
) -> Callable[[], Awaitable[None]]:
    async def register() -> None:
        ids[index] = (await run(at, "register_student", **student))["student"]["id"]

    return register


def _enroll_and_study(
    run: Run,
    at: datetime,
    ids: dict[int, str],
    index: int,
    course_id: str,
    studied: list[tuple[datetime, str]],
) -> Callable[[], Awaitable[None]]:
    """Enroll, then each lesson completed at its time: a student's progress is theirs alone, so it
    may run as one step (nothing else in the story waits on it)."""

    async def enroll_and_study() -> None:
        enrollment = (await run(at, "enroll_student", studentId=ids[index], courseId=course_id))[
            "enrollment"
        ]["id"]
        for when, lesson in studied:
            await run(when, "update_progress", enrollmentId=enrollment, lessonId=lesson, completed=True)

    return enroll_and_study


def _join(
    run: Run, at: datetime, community_id: str, ids: dict[int, str], index: int
) -> Callable[[], Awaitable[None]]:
    async def join() -> None:
        await run(at, "add_member", communityId=community_id, userId=ids[index])

    return join


def _discussion(
    run: Run,
    at: datetime,
    community_id: str,
    owner_user_id: str,
    ids: dict[int, str],
    author: int | None,
    title: str,
    content: str,
    pinned: bool,
    comments: tuple[tuple[int, str, int | None], ...],
    gaps: list[timedelta],
) -> Callable[[], Awaitable[None]]:
    """A thread and its comments, each a few hours after the one before; a reply names its parent's index."""

    async def discuss() -> None:
        author_id = owner_user_id if author is None else ids[author]
        thread = (
            await run(
                at,
                "create_thread",
                communityId=community_id,
                userId=author_id,
                title=title,
                content=content,
                pinned=pinned,
            )
        )["thread"]["id"]
        made: list[str] = []
        when = at
        for (commenter, text, parent), gap in zip(comments, gaps, strict=True):
            when = min(when + gap, at + timedelta(days=3))  # the conversation dies down within days
            reply = {"parentId": made[parent]} if parent is not None else {}
            made.append(
                (
                    await run(
                        when,
                        "create_comment",
                        communityId=community_id,
                        threadId=thread,
                        userId=ids[commenter],
                        content=text,
                        **reply,
                    )
                )["comment"]["id"]
            )

    return discuss
