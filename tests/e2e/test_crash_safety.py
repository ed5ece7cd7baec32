"""Crash safety: a real server killed with SIGKILL mid-write loses no acknowledged write and
leaves no half-created course behind; on SQLite the file passes its integrity check."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import anyio
import httpx
from sqlalchemy import func, select, text
from sqlmodel import col

from storage.engine import open_store
from storage.tables import Course, Lesson, LessonProgress, Section, User
from tests.support.factories import DEFAULT_CATEGORY_ID
from tests.support.processes import cli_env, cli_json, http_server, run_cli

ROUNDS = 5
SECTIONS, LESSONS_PER_SECTION = 3, 3
WRITERS = 3


def _nested_course(tag: str) -> dict:
    return {
        "title": f"Crash course {tag}",
        "slug": f"crash-{tag}",
        "categoryId": DEFAULT_CATEGORY_ID,
        "sections": [
            {
                "title": f"Section {s}",
                "lessons": [
                    {"title": f"Lesson {s}.{n}", "duration": 60, "videoUrl": "https://youtu.be/dQw4w9WgXcQ"}
                    for n in range(LESSONS_PER_SECTION)
                ],
            }
            for s in range(SECTIONS)
        ],
    }


def _drive_writes(
    url: str, key: str, round_number: int, acknowledged: dict, stop: threading.Event
) -> list[threading.Thread]:
    """Writers that send writes until the server dies, recording what it acknowledged: nested
    course creations, student registrations with enrollments, and progress updates."""

    def writer(number: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=10) as client:
            sequence = 0
            course: tuple[str, list[str]] | None = None  # the newest course and its lessons
            learning: tuple[str, list[str]] | None = None  # an enrollment and the lessons left
            while not stop.is_set():
                sequence += 1
                tag = f"r{round_number}-w{number}-{sequence}"
                try:
                    if learning and learning[1]:
                        enrollment_id, lessons = learning
                        lesson_id = lessons.pop()
                        body = {"lessonId": lesson_id, "completed": True}
                        if client.patch(f"/enrollments/{enrollment_id}", json=body).status_code == 200:
                            acknowledged["progress"].append((enrollment_id, lesson_id))
                    elif sequence % 2:
                        response = client.post("/courses", json=_nested_course(tag))
                        if response.status_code == 201:
                            created = response.json()["course"]
                            acknowledged["courses"].append(created["id"])
                            course = (
                                created["id"],
                                [
                                    lesson["id"]
                                    for section in created["sections"]
                                    for lesson in section["lessons"]
                                ],
                            )
                    else:
                        student = {
                            "name": f"Student {tag}",
                            "email": f"{tag}@crash.example",
                            "password": "crash-pass-1",
                        }
                        response = client.post("/students", json=student)
                        if response.status_code == 201:
                            student_id = response.json()["student"]["id"]
                            acknowledged["students"].append(student_id)
                            if course:
                                enrolled = client.post(
                                    "/enrollments", json={"studentId": student_id, "courseId": course[0]}
                                )
                                if enrolled.status_code == 201:
                                    learning = (enrolled.json()["enrollment"]["id"], list(course[1]))
                except httpx.TransportError:
                    return  # the server is gone

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    return threads


async def _check_store(url: str, acknowledged: dict) -> None:
    async with open_store(url) as store, store.sessions() as session:
        if store.is_sqlite:
            assert (await session.execute(text("PRAGMA integrity_check"))).scalar_one() == "ok"
        course_ids = set((await session.scalars(select(col(Course.id)))).all())
        assert set(acknowledged["courses"]) <= course_ids, "an acknowledged course is missing"
        student_ids = set(
            (await session.scalars(select(col(User.id)).where(col(User.role) == "student"))).all()
        )
        assert set(acknowledged["students"]) <= student_ids, "an acknowledged student is missing"
        sections = {
            course_id: count
            for course_id, count in await session.execute(
                select(col(Section.course_id), func.count()).group_by(col(Section.course_id))
            )
        }
        lessons = {
            course_id: count
            for course_id, count in await session.execute(
                select(col(Lesson.course_id), func.count()).group_by(col(Lesson.course_id))
            )
        }
        for course_id in course_ids:
            assert sections.get(course_id) == SECTIONS, f"course {course_id} is half-created"
            assert lessons.get(course_id) == SECTIONS * LESSONS_PER_SECTION, (
                f"course {course_id} is half-created"
            )
        recorded = set(
            (
                await session.execute(
                    select(col(LessonProgress.enrollment_id), col(LessonProgress.lesson_id))
                )
            ).all()
        )
        assert set(acknowledged["progress"]) <= recorded, "an acknowledged progress update is missing"


def _flowing(acknowledged: dict[str, list], before: int, progress_before: int) -> bool:
    """Every kind of write acknowledged this round (a loaded machine is slow to get there)."""
    created = len(acknowledged["courses"]) + len(acknowledged["students"]) >= before + 6
    return created and len(acknowledged["progress"]) > progress_before


def test_sigkill_mid_write_loses_nothing_acknowledged(databases, tmp_path):
    env = cli_env(databases.new("crash"))
    run_cli(env, "db", "upgrade")
    producer = cli_json(
        env, "producers", "create", "--name", "Crash Academy", "--email", "crash@crash.example"
    )
    key = cli_json(
        env, "keys", "create", "--producer", producer["id"], "--name", "crash", "--permissions", "*"
    )["key"]
    acknowledged: dict[str, list] = {"courses": [], "students": [], "progress": []}
    rng = random.Random(20261127)
    for round_number in range(ROUNDS):
        stop = threading.Event()
        with http_server(env, tmp_path / f"round-{round_number}.log") as server:
            before = len(acknowledged["courses"]) + len(acknowledged["students"])
            progress_before = len(acknowledged["progress"])
            threads = _drive_writes(server.url, key, round_number, acknowledged, stop)
            deadline = time.monotonic() + 30
            # Let writes flow, then kill the process while requests are in flight.
            while not _flowing(acknowledged, before, progress_before) and time.monotonic() < deadline:
                time.sleep(0.05)  # the clients write to the real server in their threads
            time.sleep(rng.uniform(0.05, 0.4))  # a random moment of the real server's writes to kill it at
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert len(acknowledged["courses"]) + len(acknowledged["students"]) > before, (
            "no write was acknowledged"
        )
        anyio.run(_check_store, env["BLOHKO_DATABASE_URL"], acknowledged)
    assert acknowledged["progress"], "no progress update was acknowledged: the test drove too few writes"
