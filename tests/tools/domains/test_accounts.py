"""Producers and their owners: an owner's email names one owner on the whole platform (it is the
login of a producer session), while students of any producer may share it."""

import pytest

import storage.accounts as accounts_store
from storage.engine import open_store
from storage.errors import ConstraintViolation
from storage.ids import new_id, utcnow
from storage.tables import Producer, User
from tests.support.factories import mcp_client, ok
from tests.support.processes import cli_env, cli_json, run_cli
from tools.core.errors import Conflict
from tools.domains.accounts import create_producer

DUPLICATE = "dup@example.com"
OWNER_CONFLICT = f"A producer owner with email {DUPLICATE} already exists"


async def _register_student(store, key: str, email: str) -> None:
    async with mcp_client(store, key) as client:
        ok(await client.call_tool("register_student", {"name": "Dup Student", "email": email}))


async def _new_producer(store, email: str):
    async with store.writing() as db:
        return await create_producer(
            db, name="Dup Academy", email=email, password="owner-pass-1", clock=utcnow
        )


async def test_cli_refuses_a_second_owner_email_that_a_student_also_has(databases):
    env = cli_env(databases.new("owners"))
    run_cli(env, "db", "upgrade")
    school = cli_json(env, "producers", "create", "--name", "School", "--email", "school@example.com")
    key = cli_json(
        env, "keys", "create", "--producer", school["id"], "--name", "k", "--permissions", "students:*"
    )
    async with open_store(env["BLOHKO_DATABASE_URL"]) as store:
        await _register_student(store, key["key"], DUPLICATE)

    first = run_cli(env, "producers", "create", "--name", "First", "--email", DUPLICATE, "--json")
    second = run_cli(
        env, "producers", "create", "--name", "Second", "--email", "DUP@Example.com ", "--json", check=False
    )

    assert first.returncode == 0
    assert second.returncode != 0 and second.stdout == ""
    assert "A producer owner with email DUP@Example.com already exists" in second.stderr
    assert "Traceback" not in second.stderr


async def test_a_second_owner_with_an_email_a_student_has_is_a_conflict(store, tenant):
    await _register_student(store, tenant.key, DUPLICATE)
    await _new_producer(store, DUPLICATE)  # a student's email is free for an owner

    with pytest.raises(Conflict, match=OWNER_CONFLICT) as refused:
        await _new_producer(store, DUPLICATE)

    assert refused.value.code == "conflict"


async def test_a_second_owner_that_races_past_the_check_is_the_same_conflict(store, monkeypatch):
    await _new_producer(store, DUPLICATE)

    async def not_yet_committed(session, **_):
        return None  # the other process's owner was not visible yet when this one checked

    monkeypatch.setattr(accounts_store, "get_owner_by_email", not_yet_committed)
    monkeypatch.setattr(accounts_store, "get_user_by_email", not_yet_committed)
    with pytest.raises(Conflict, match=OWNER_CONFLICT):
        await _new_producer(store, DUPLICATE)


def _user(producer_id: str, role: str, email: str = DUPLICATE) -> User:
    return User(
        id=new_id("user"),
        producer_id=producer_id,
        name="Someone",
        email=email,
        email_normalized=email,
        role=role,
    )


async def test_the_database_refuses_a_second_owner_with_the_same_email(store):
    producers = [Producer(id=new_id("prod"), name=f"Academy {n}") for n in range(4)]
    async with store.writing() as db:
        db.session.add_all(producers)
        await db.session.flush()
        # Owners and students, and students of different producers, may share an email.
        db.session.add_all(
            [
                _user(producers[0].id, "owner"),
                _user(producers[1].id, "student"),
                _user(producers[2].id, "student"),
            ]
        )

    with pytest.raises(ConstraintViolation) as refused:
        async with store.writing() as db:
            db.session.add(_user(producers[3].id, "owner"))
    assert refused.value.constraint == "uq_users_owner_email"
