"""Discussions found in fewer calls: thread search and time windows across communities, comment
search across a community's threads, and deletes that say what went with them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from sqlalchemy import insert, select, update
from sqlmodel import col

from storage.engine import Store
from storage.ids import utcnow
from storage.tables import Comment, Community, Media, Member, Thread
from tests.support.community_factories import (
    MEDIA,
    call,
    insert_comments,
    new_comment,
    new_community,
    new_student,
    new_thread,
    refuse,
    row_counts,
)
from tests.support.factories import mcp_client, statements
from tests.support.rest import http_app, rest_client

JAN_5 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
JAN_12 = datetime(2026, 1, 12, 10, 0, tzinfo=UTC)
JAN_19 = datetime(2026, 1, 19, 10, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _created_at(store: Store, thread_id: str, moment: datetime) -> None:
    """Move a thread's creation time (the tools stamp the clock's now)."""
    async with store.writing() as db:
        await db.session.execute(update(Thread).where(col(Thread.id) == thread_id).values(created_at=moment))


async def _ids_left(store: Store, table: type, ids: list[str]) -> list[str]:
    async with store.sessions() as session:
        return list(await session.scalars(select(table.id).where(table.id.in_(ids))))


# --- list_threads: search, since/until, across communities ---


async def test_list_threads_search_matches_title_or_content_case_insensitively(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        by_title = await new_thread(
            client, community["id"], author, title="Weekly Discussion", content="Wins?"
        )
        by_body = await new_thread(
            client, community["id"], author, title="Check-in", content="Our WEEKLY call"
        )
        await new_thread(client, community["id"], author, title="Introductions", content="Who are you?")

        found = await call(client, "list_threads", communityId=community["id"], search="weekly")
        nothing = await call(client, "list_threads", communityId=community["id"], search="monthly")

    assert {t["id"] for t in found["data"]} == {by_title["id"], by_body["id"]}
    assert found["pagination"]["total"] == 2
    assert nothing["data"] == [] and nothing["pagination"]["total"] == 0


async def test_list_threads_search_takes_percent_and_underscore_literally(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        sale = await new_thread(client, community["id"], author, title="50% off", content="Sale")
        await new_thread(client, community["id"], author, title="500 members", content="Party")
        await new_thread(client, community["id"], author, title="snake case", content="my thread")

        percent = await call(client, "list_threads", communityId=community["id"], search="50%")
        underscore = await call(client, "list_threads", communityId=community["id"], search="my_thread")

    assert [t["id"] for t in percent["data"]] == [sale["id"]]
    assert underscore["data"] == []


async def test_list_threads_since_is_inclusive_and_until_exclusive(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        threads = [await new_thread(client, community["id"], author, title=f"Week {i}") for i in range(3)]
        for thread, moment in zip(threads, (JAN_5, JAN_12, JAN_19), strict=True):
            await _created_at(store, thread["id"], moment)

        async def listed(**window: datetime) -> list[str]:
            arguments = {name: _iso(moment) for name, moment in window.items()}
            result = await call(client, "list_threads", communityId=community["id"], **arguments)
            return sorted(t["title"] for t in result["data"])

        from_12 = await listed(since=JAN_12)
        before_12 = await listed(until=JAN_12)
        only_12 = await listed(since=JAN_12, until=JAN_19)
        empty = await listed(since=JAN_12, until=JAN_12)

    assert from_12 == ["Week 1", "Week 2"]
    assert before_12 == ["Week 0"]
    assert only_12 == ["Week 1"]
    assert empty == []


async def test_list_threads_since_after_until_is_unprocessable_naming_both(store, tenant):
    """A rule JSON Schema cannot state (an order between two dates): 422, while a time that is not
    one is refused by the schema, 400."""
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        failure = await refuse(client, "list_threads", since=_iso(JAN_19), until=_iso(JAN_12))
        in_community = await refuse(
            client, "list_threads", communityId=community["id"], since=_iso(JAN_19), until=_iso(JAN_12)
        )
        not_a_time = await refuse(client, "list_threads", since="last week")
    assert failure == in_community
    assert failure["error"] == "unprocessable"
    assert "since" in failure["message"] and "until" in failure["message"]
    assert not_a_time["error"] == "bad_request" and "since" in not_a_time["message"]


async def test_list_threads_without_community_lists_every_community_of_the_producer_only(
    store, tenant, tenant_factory
):
    other = await tenant_factory("Other Academy")
    async with mcp_client(store, other.key) as client:
        foreign = await new_community(client)
        await new_thread(client, foreign["id"], other.owner_user_id, title="Weekly Discussion (theirs)")
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        first = await new_community(client)
        second = await new_community(client)
        older = await new_thread(client, first["id"], author, title="Weekly Discussion", pinned=True)
        middle = await new_thread(client, second["id"], author, title="Weekly Wins")
        newest = await new_thread(client, second["id"], author, title="Introductions")

        everything = await call(client, "list_threads")
        weekly = await call(client, "list_threads", search="weekly")

    # Across communities: latest activity first (pinning orders threads inside one community).
    assert [t["id"] for t in everything["data"]] == [newest["id"], middle["id"], older["id"]]
    assert [t["communityId"] for t in everything["data"]] == [second["id"], second["id"], first["id"]]
    assert everything["pagination"]["total"] == 3
    assert [t["id"] for t in weekly["data"]] == [middle["id"], older["id"]]


async def test_list_threads_in_another_producers_community_is_not_found(store, tenant, tenant_factory):
    other = await tenant_factory("Other Academy")
    async with mcp_client(store, other.key) as client:
        foreign = await new_community(client)
        await new_thread(client, foreign["id"], other.owner_user_id)
    async with mcp_client(store, tenant.key) as client:
        failure = await refuse(client, "list_threads", communityId=foreign["id"], search="Introduce")
        mine = await call(client, "list_threads", search="Introduce")
    assert failure == {"error": "not_found", "message": "Community not found"}
    assert mine["data"] == []


async def test_pin_last_weeks_discussion_takes_two_calls(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        for name in ("General", "Course Community"):
            community = await new_community(client, name=name)
            old = await new_thread(client, community["id"], author, title="Weekly Discussion: week 1")
            await _created_at(store, old["id"], JAN_5)
            await new_thread(client, community["id"], author, title="Off topic")
        wanted = await new_thread(client, community["id"], author, title="Weekly Discussion: week 2")
        await _created_at(store, wanted["id"], JAN_12)

        found = await call(
            client, "list_threads", search="weekly discussion", since=_iso(JAN_12), until=_iso(JAN_19)
        )
        [thread] = found["data"]
        pinned = await call(
            client, "update_thread", communityId=thread["communityId"], threadId=thread["id"], pinned=True
        )

    assert thread["id"] == wanted["id"]
    assert pinned["thread"]["pinned"] is True


# --- list_comments: across a community's threads, search ---


async def test_list_comments_across_a_community_with_search_newest_first_each_with_its_thread(
    store, tenant, tenant_factory
):
    other = await tenant_factory("Other Academy")
    async with mcp_client(store, other.key) as client:
        foreign = await new_community(client)
        foreign_thread = await new_thread(client, foreign["id"], other.owner_user_id)
        await new_comment(
            client, foreign["id"], foreign_thread["id"], other.owner_user_id, content="BUY CHEAP pills"
        )
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        elsewhere = await new_community(client)
        first = await new_thread(client, community["id"], author)
        second = await new_thread(client, community["id"], author)
        spam = await new_comment(
            client, community["id"], first["id"], author, content="buy cheap watches here"
        )
        await new_comment(client, community["id"], first["id"], author, content="Welcome!")
        later_spam = await new_comment(
            client, community["id"], second["id"], author, content="Buy Cheap bags"
        )
        await new_comment(
            client,
            elsewhere["id"],
            (await new_thread(client, elsewhere["id"], author))["id"],
            author,
            content="buy cheap elsewhere",
        )

        found = await call(client, "list_comments", communityId=community["id"], search="buy cheap")
        everything = await call(client, "list_comments", communityId=community["id"])

    assert [(c["id"], c["threadId"]) for c in found["data"]] == [
        (later_spam["id"], second["id"]),
        (spam["id"], first["id"]),
    ]
    assert everything["pagination"]["total"] == 3
    assert everything["data"][0]["id"] == later_spam["id"]


async def test_list_comments_of_one_thread_takes_a_search_and_stays_oldest_first(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        other = await new_thread(client, community["id"], author)
        first = await new_comment(client, community["id"], thread["id"], author, content="Great question")
        await new_comment(client, community["id"], thread["id"], author, content="Thanks")
        second = await new_comment(
            client, community["id"], thread["id"], author, parent_id=first["id"], content="GREAT"
        )
        await new_comment(client, community["id"], other["id"], author, content="great too")

        found = await call(
            client, "list_comments", communityId=community["id"], threadId=thread["id"], search="great"
        )

    assert [c["id"] for c in found["data"]] == [first["id"], second["id"]]


async def test_list_comments_by_thread_id_alone_finds_the_callers_thread_only(store, tenant, tenant_factory):
    other = await tenant_factory("Other Academy")
    async with mcp_client(store, other.key) as client:
        foreign = await new_community(client)
        foreign_thread = await new_thread(client, foreign["id"], other.owner_user_id)
        await new_comment(client, foreign["id"], foreign_thread["id"], other.owner_user_id)
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        comment = await new_comment(client, community["id"], thread["id"], author)

        mine = await call(client, "list_comments", threadId=thread["id"])
        theirs = await refuse(client, "list_comments", threadId=foreign_thread["id"])
        their_community = await refuse(client, "list_comments", communityId=foreign["id"])
        wrong_pair = await refuse(
            client, "list_comments", communityId=community["id"], threadId=foreign_thread["id"]
        )

    assert [c["id"] for c in mine["data"]] == [comment["id"]]
    assert theirs == wrong_pair == {"error": "not_found", "message": "Thread not found"}
    assert their_community == {"error": "not_found", "message": "Community not found"}


async def test_list_comments_without_thread_or_community_is_bad_request_naming_both(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        failure = await refuse(client, "list_comments", search="spam")
    assert failure["error"] == "bad_request"
    assert "threadId" in failure["message"] and "communityId" in failure["message"]


async def test_remove_the_spam_comment_and_its_replies_takes_two_calls(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        threads = [await new_thread(client, community["id"], author) for _ in range(3)]
        for thread in threads:
            await new_comment(client, community["id"], thread["id"], author, content="Nice")
        target = threads[1]
        spam = await new_comment(
            client, community["id"], target["id"], author, content="FREE crypto at scam.example"
        )
        reply = await new_comment(
            client, community["id"], target["id"], author, parent_id=spam["id"], content="Spam!"
        )
        await new_comment(
            client, community["id"], target["id"], author, parent_id=reply["id"], content="Agreed"
        )

        [found] = (await call(client, "list_comments", communityId=community["id"], search="free crypto"))[
            "data"
        ]
        deleted = await call(
            client,
            "delete_comment",
            communityId=community["id"],
            threadId=found["threadId"],
            commentId=found["id"],
        )
        left = await call(client, "get_thread", communityId=community["id"], threadId=target["id"])

    assert deleted == {"deleted": True, "id": spam["id"], "repliesDeleted": 2}
    assert [c["content"] for c in left["thread"]["comments"]] == ["Nice"]
    assert left["thread"]["commentCount"] == 1


# --- deletes report what went with them ---


async def test_delete_comment_counts_a_three_deep_reply_chain_and_removes_it(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], tenant.owner_user_id)
        # 0 <- 1 <- 2 <- 3 is the chain; 4 is a sibling of 0 and stays.
        ids = await insert_comments(
            store, thread_id=thread["id"], author_id=tenant.owner_user_id, parents=[None, 0, 1, 2, None]
        )
        deleted = await call(
            client, "delete_comment", communityId=community["id"], threadId=thread["id"], commentId=ids[0]
        )
        leaf = await call(
            client, "delete_comment", communityId=community["id"], threadId=thread["id"], commentId=ids[4]
        )

    assert deleted == {"deleted": True, "id": ids[0], "repliesDeleted": 3}
    assert leaf == {"deleted": True, "id": ids[4], "repliesDeleted": 0}
    assert await _ids_left(store, Comment, ids) == []


async def test_delete_thread_counts_its_comments_and_removes_them(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        kept = await new_thread(client, community["id"], author)
        ids = await insert_comments(
            store, thread_id=thread["id"], author_id=author, parents=[None, 0, 1, None, 3, None, 0]
        )
        kept_ids = await insert_comments(store, thread_id=kept["id"], author_id=author, parents=[None, 0])
        deleted = await call(client, "delete_thread", communityId=community["id"], threadId=thread["id"])
        empty = await new_thread(client, community["id"], author)
        deleted_empty = await call(client, "delete_thread", communityId=community["id"], threadId=empty["id"])

    assert deleted == {"deleted": True, "id": thread["id"], "commentsDeleted": 7}
    assert deleted_empty == {"deleted": True, "id": empty["id"], "commentsDeleted": 0}
    assert await _ids_left(store, Comment, ids) == []
    assert sorted(await _ids_left(store, Comment, kept_ids)) == sorted(kept_ids)


async def test_delete_community_counts_threads_comments_members_and_media_and_removes_them(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        kept = await new_community(client)
        kept_thread = await new_thread(client, kept["id"], author)
        await new_comment(client, kept["id"], kept_thread["id"], author)
        community = await new_community(client)
        for _ in range(2):
            await call(client, "add_member", communityId=community["id"], userId=await new_student(client))
            await call(client, "add_member", communityId=kept["id"], userId=await new_student(client))
        threads = [await new_thread(client, community["id"], author) for _ in range(3)]
        await insert_comments(store, thread_id=threads[0]["id"], author_id=author, parents=[None, 0, 1, 2])
        await insert_comments(store, thread_id=threads[2]["id"], author_id=author, parents=[None, None])
        for _ in range(2):
            await call(client, "add_media", communityId=community["id"], userId=author, **MEDIA)
        before = await row_counts(store)

        deleted = await call(client, "delete_community", communityId=community["id"])
        empty = await new_community(client)
        deleted_empty = await call(client, "delete_community", communityId=empty["id"])

    assert deleted == {
        "deleted": True,
        "id": community["id"],
        "threadsDeleted": 3,
        "commentsDeleted": 6,
        "membersRemoved": 2,
        "mediaDeleted": 2,
    }
    assert deleted_empty == {
        "deleted": True,
        "id": empty["id"],
        "threadsDeleted": 0,
        "commentsDeleted": 0,
        "membersRemoved": 0,
        "mediaDeleted": 0,
    }
    after = await row_counts(store)
    assert {table: before[table] - after[table] for table in before} == {
        Community.__tablename__: 1,
        Thread.__tablename__: 3,
        Comment.__tablename__: 6,
        Member.__tablename__: 2,
        Media.__tablename__: 2,
    }
    assert after[Comment.__tablename__] == 1 and after[Member.__tablename__] == 2


async def _delete_while_a_comment_is_being_written(
    store, client, thread_id: str, author_id: str, tool: str, **ids: str
) -> tuple[bool, dict[str, Any]]:
    """Run `tool` while another transaction has written a comment on `thread_id` and not yet
    committed; returns whether the delete waited for that commit, and its result."""
    result: dict[str, Any] = {}

    async def delete() -> None:
        result.update(await call(client, tool, **ids))

    async with anyio.create_task_group() as group, store.writing() as db:
        now = utcnow()
        comment = {
            "id": "cmt_late",
            "thread_id": thread_id,
            "author_id": author_id,
            "content": "Late reply",
        }
        await db.session.execute(insert(Comment).values(**comment, created_at=now, updated_at=now))
        group.start_soon(delete)
        # The database holds the delete behind this open transaction: no event says it waits.
        await anyio.sleep(0.5)
        waited = not result
    return waited, result


@pytest.mark.postgres_only
async def test_delete_thread_counts_a_comment_committed_while_it_waited(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        await new_comment(client, community["id"], thread["id"], author)
        ids = {"communityId": community["id"], "threadId": thread["id"]}
        waited, deleted = await _delete_while_a_comment_is_being_written(
            store, client, thread["id"], author, "delete_thread", **ids
        )
    assert waited
    assert deleted == {"deleted": True, "id": thread["id"], "commentsDeleted": 2}
    assert (await row_counts(store))["comments"] == 0


@pytest.mark.postgres_only
async def test_delete_community_counts_a_comment_committed_while_it_waited(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        ids = {"communityId": community["id"]}
        waited, deleted = await _delete_while_a_comment_is_being_written(
            store, client, thread["id"], author, "delete_community", **ids
        )
    assert waited
    assert (deleted["threadsDeleted"], deleted["commentsDeleted"]) == (1, 1)
    assert (await row_counts(store))["comments"] == 0


# --- statements: constant in the number of rows ---


async def _statement_counts(store, client, tool: str, arguments: dict) -> int:
    """The statements one call runs; its page must be full, with more rows beyond (so it counts them)."""
    with statements(store) as seen:
        result = await call(client, tool, **arguments)
    assert len(result["data"]) == arguments["limit"] and result["pagination"]["hasMore"], tool
    return len(seen)


async def test_cross_community_thread_list_runs_the_same_statements_for_2_or_150_threads(
    store, tenant, tenant_factory
):
    small = await tenant_factory("Small Academy")
    async with mcp_client(store, small.key) as client:
        await call(client, "whoami")  # the key's last-used time is written once, not on every call
        community = await new_community(client)
        for t in range(2):
            await new_thread(client, community["id"], small.owner_user_id, title=f"Weekly {t}")
        one = await _statement_counts(store, client, "list_threads", {"search": "weekly", "limit": 1})
        since = await _statement_counts(store, client, "list_threads", {"since": _iso(JAN_5), "limit": 1})

    async with mcp_client(store, tenant.key) as client:
        await call(client, "whoami")
        for c in range(3):
            community = await new_community(client)
            for t in range(50):
                author = await new_student(client, f"Author {c}-{t}") if t < 5 else tenant.owner_user_id
                if t < 5:
                    await call(client, "add_member", communityId=community["id"], userId=author)
                await new_thread(client, community["id"], author, title=f"Weekly {c}-{t}")
        many = await _statement_counts(store, client, "list_threads", {"search": "weekly", "limit": 100})
        many_since = await _statement_counts(
            store, client, "list_threads", {"since": _iso(JAN_5), "limit": 100}
        )

    assert one == many == since == many_since <= 4


async def test_cross_thread_comment_list_runs_the_same_statements_for_2_or_600_comments(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        await call(client, "whoami")
        small = await new_community(client)
        thread = await new_thread(client, small["id"], author)
        for c in range(2):
            await new_comment(client, small["id"], thread["id"], author, content=f"spam {c}")
        arguments = {"communityId": small["id"], "search": "spam", "limit": 1}
        one = await _statement_counts(store, client, "list_comments", arguments)

        big = await new_community(client)
        students = [await new_student(client, f"Student {i}") for i in range(10)]
        for student in students:
            await call(client, "add_member", communityId=big["id"], userId=student)
        for _ in range(6):
            thread = await new_thread(client, big["id"], author)
            ids = await insert_comments(store, thread_id=thread["id"], author_id=author, parents=[None] * 100)
            async with store.writing() as db:  # many authors, one page
                for i, comment_id in enumerate(ids):
                    await db.session.execute(
                        update(Comment)
                        .where(col(Comment.id) == comment_id)
                        .values(author_id=students[i % 10], content="spam")
                    )
        arguments = {"communityId": big["id"], "search": "spam", "limit": 100}
        many = await _statement_counts(store, client, "list_comments", arguments)
        everything = await _statement_counts(
            store, client, "list_comments", {"communityId": big["id"], "limit": 100}
        )

    assert one == many == everything <= 5


# --- REST: the existing paths, with the new query parameters ---


async def test_rest_lists_threads_and_comments_with_search_on_the_existing_paths(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        weekly = await new_thread(client, community["id"], author, title="Weekly Discussion")
        await new_thread(client, community["id"], author, title="Introductions")
        await _created_at(store, weekly["id"], JAN_12)
        spam = await new_comment(client, community["id"], weekly["id"], author, content="Buy cheap watches")
        await new_comment(
            client, community["id"], weekly["id"], author, parent_id=spam["id"], content="Reported"
        )
    threads_path = f"/communities/{community['id']}/threads"
    comments_path = f"{threads_path}/{weekly['id']}/comments"

    async with rest_client(http_app(store), tenant.key) as http:
        plain = await http.get(threads_path)
        found = await http.get(
            threads_path, params={"search": "WEEKLY", "since": _iso(JAN_12), "until": _iso(JAN_19)}
        )
        backwards = await http.get(threads_path, params={"since": _iso(JAN_19), "until": _iso(JAN_12)})
        comments = await http.get(comments_path, params={"search": "cheap"})
        deleted = await http.delete(f"{comments_path}/{spam['id']}")
        deleted_thread = await http.delete(f"{threads_path}/{weekly['id']}")
        deleted_community = await http.delete(f"/communities/{community['id']}")

    assert plain.status_code == 200 and plain.json()["pagination"]["total"] == 2
    assert found.status_code == 200 and [t["id"] for t in found.json()["data"]] == [weekly["id"]]
    assert backwards.status_code == 422 and backwards.json()["error"] == "unprocessable"
    assert comments.status_code == 200 and [c["id"] for c in comments.json()["data"]] == [spam["id"]]
    assert deleted.json() == {"deleted": True, "id": spam["id"], "repliesDeleted": 1}
    assert deleted_thread.json() == {"deleted": True, "id": weekly["id"], "commentsDeleted": 0}
    assert deleted_community.status_code == 200
    assert deleted_community.json() == {
        "deleted": True,
        "id": community["id"],
        "threadsDeleted": 1,
        "commentsDeleted": 0,
        "membersRemoved": 0,
        "mediaDeleted": 0,
    }


async def test_rest_lists_threads_of_all_communities_and_comments_of_a_community_on_their_own_paths(
    store, tenant, tenant_factory
):
    author = tenant.owner_user_id
    other = await tenant_factory("Other Academy")
    async with mcp_client(store, other.key) as client:
        foreign = await new_community(client)
        await new_thread(client, foreign["id"], other.owner_user_id, title="Weekly Discussion elsewhere")
    async with mcp_client(store, tenant.key) as client:
        first, second = await new_community(client), await new_community(client)
        one = await new_thread(client, first["id"], author, title="Weekly Discussion one")
        two = await new_thread(client, second["id"], author, title="Weekly Discussion two")
        spam = await new_comment(client, second["id"], two["id"], author, content="Buy cheap watches")
        await new_comment(client, first["id"], one["id"], author, content="Cheap shot")

    async with rest_client(http_app(store), tenant.key) as http:
        threads = await http.get("/threads", params={"search": "weekly"})
        comments = await http.get(f"/communities/{second['id']}/comments", params={"search": "cheap"})
        foreign_comments = await http.get(f"/communities/{foreign['id']}/comments")

    assert threads.status_code == 200 and {t["id"] for t in threads.json()["data"]} == {one["id"], two["id"]}
    assert comments.status_code == 200 and [c["id"] for c in comments.json()["data"]] == [spam["id"]]
    assert comments.json()["data"][0]["threadId"] == two["id"]
    assert foreign_comments.status_code == 404  # another producer's community is not found
