"""Threads and comments: authorship rules, ordering, nested replies, deep trees, subtree deletes."""

from __future__ import annotations

import random

import pytest

from tests.support.community_factories import (
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
from tools.domains.discussions import MAX_NESTING, get_thread


async def _member(client, community_id: str, name: str = "Jane Smith") -> str:
    user_id = await new_student(client, name)
    await call(client, "add_member", communityId=community_id, userId=user_id)
    return user_id


async def test_bot_example_pinned_weekly_discussion_lists_before_20_newer_threads(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client, name="Course Community")
        bot = await _member(client, community["id"], name="Community Bot")
        weekly = await new_thread(
            client,
            community["id"],
            bot,
            title="Weekly Discussion: What did you learn this week?",
            content="Share your wins, challenges, and insights...",
            pinned=True,
        )
        newer = [
            (await new_thread(client, community["id"], bot, title=f"Question {i}"))["id"] for i in range(20)
        ]

        listed = await call(client, "list_threads", communityId=community["id"], limit=21)

    assert weekly["pinned"] is True and weekly["author"]["name"] == "Community Bot"
    assert [t["id"] for t in listed["data"]] == [weekly["id"], *reversed(newer)]
    assert listed["pagination"] == {"page": 1, "limit": 21, "total": 21, "totalPages": 1, "hasMore": False}


async def test_a_new_comment_moves_its_thread_up_among_unpinned_threads(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        older = await new_thread(client, community["id"], tenant.owner_user_id, title="Older")
        newer = await new_thread(client, community["id"], tenant.owner_user_id, title="Newer")
        await new_comment(client, community["id"], older["id"], tenant.owner_user_id)

        listed = await call(client, "list_threads", communityId=community["id"])

    assert [t["id"] for t in listed["data"]] == [older["id"], newer["id"]]
    assert listed["data"][0]["commentCount"] == 1
    assert listed["data"][0]["lastActivityAt"] > older["lastActivityAt"]


async def test_update_thread_pins_and_unpins(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        first = await new_thread(client, community["id"], tenant.owner_user_id, title="First")
        second = await new_thread(client, community["id"], tenant.owner_user_id, title="Second")
        ids = {"communityId": community["id"], "threadId": first["id"]}

        pinned = await call(client, "update_thread", **ids, pinned=True)
        order_pinned = await call(client, "list_threads", communityId=community["id"])
        await call(client, "update_thread", **ids, pinned=False)
        order_unpinned = await call(client, "list_threads", communityId=community["id"])

    assert pinned["thread"]["pinned"] is True and pinned["thread"]["title"] == "First"
    assert [t["id"] for t in order_pinned["data"]] == [first["id"], second["id"]]
    assert [t["id"] for t in order_unpinned["data"]] == [second["id"], first["id"]]


async def test_update_thread_refuses_null_title(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], tenant.owner_user_id)
        failure = await refuse(
            client, "update_thread", communityId=community["id"], threadId=thread["id"], title=None
        )
        kept = await call(client, "get_thread", communityId=community["id"], threadId=thread["id"])
    assert failure["error"] == "bad_request" and "title" in failure["message"]
    assert kept["thread"]["title"] == thread["title"]


async def test_get_thread_returns_a_three_level_comment_tree_nested(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        ids = (community["id"], thread["id"], author)
        top = await new_comment(client, *ids, content="top")
        middle = await new_comment(client, *ids, parent_id=top["id"], content="middle")
        leaf = await new_comment(client, *ids, parent_id=middle["id"], content="leaf")
        other = await new_comment(client, *ids, content="second top")

        got = (await call(client, "get_thread", communityId=community["id"], threadId=thread["id"]))["thread"]

    assert got["commentCount"] == 4
    assert [c["id"] for c in got["comments"]] == [top["id"], other["id"]]
    [level2] = got["comments"][0]["replies"]
    [level3] = level2["replies"]
    assert (level2["id"], level2["parentId"]) == (middle["id"], top["id"])
    assert (level3["id"], level3["parentId"], level3["replies"]) == (leaf["id"], middle["id"], [])
    assert level3["author"]["id"] == author and set(level3["author"]) == {"id", "name", "avatarUrl"}


async def test_deleting_the_middle_comment_removes_its_subtree_and_nothing_else(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        ids = (community["id"], thread["id"], author)
        top = await new_comment(client, *ids)
        middle = await new_comment(client, *ids, parent_id=top["id"])
        await new_comment(client, *ids, parent_id=middle["id"])
        await new_comment(client, *ids, parent_id=middle["id"])
        sibling = await new_comment(client, *ids, parent_id=top["id"])
        other = await new_comment(client, *ids)

        deleted = await call(
            client,
            "delete_comment",
            communityId=community["id"],
            threadId=thread["id"],
            commentId=middle["id"],
        )
        got = (await call(client, "get_thread", communityId=community["id"], threadId=thread["id"]))["thread"]

    assert deleted == {"deleted": True, "id": middle["id"], "repliesDeleted": 2}
    assert [c["id"] for c in got["comments"]] == [top["id"], other["id"]]
    assert [c["id"] for c in got["comments"][0]["replies"]] == [sibling["id"]]
    assert got["commentCount"] == 3
    assert (await row_counts(store))["comments"] == 3


async def test_thread_author_who_is_not_a_member_is_forbidden(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        outsider = await new_student(client)
        failure = await refuse(
            client, "create_thread", communityId=community["id"], userId=outsider, title="Hi", content="Hello"
        )
    assert failure["error"] == "forbidden" and "add_member" in failure["message"]
    assert (await row_counts(store))["threads"] == 0


async def test_comment_author_who_is_not_a_member_is_forbidden(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], tenant.owner_user_id)
        outsider = await new_student(client)
        failure = await refuse(
            client,
            "create_comment",
            communityId=community["id"],
            threadId=thread["id"],
            userId=outsider,
            content="Hi",
        )
    assert failure["error"] == "forbidden" and "add_member" in failure["message"]
    assert (await row_counts(store))["comments"] == 0


async def test_a_member_and_a_staff_user_may_post_without_being_members(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        member = await _member(client, community["id"])
        by_owner = await new_thread(client, community["id"], tenant.owner_user_id)
        by_member = await new_comment(client, community["id"], by_owner["id"], member)
    assert by_owner["author"]["id"] == tenant.owner_user_id
    assert by_member["author"]["id"] == member


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "x" * 201),
        ("title", "   "),
        ("content", "x" * 20001),
        ("content", ""),
        ("pinned", "yes"),
    ],
)
async def test_create_thread_refuses_invalid_field(store, tenant, field, value):
    arguments = {"title": "Hi", "content": "Hello", "userId": tenant.owner_user_id, field: value}
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        failure = await refuse(client, "create_thread", communityId=community["id"], **arguments)
    assert failure["error"] == "bad_request" and field in failure["message"]
    assert (await row_counts(store))["threads"] == 0


async def test_thread_title_of_200_and_content_of_20000_characters_are_accepted(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(
            client, community["id"], tenant.owner_user_id, title="t" * 200, content="c" * 20000
        )
    assert len(thread["title"]) == 200 and len(thread["content"]) == 20000


async def _comment_in_the_first_of_two_threads(client, author: str) -> tuple[str, str, str]:
    """(community id, id of a second thread, id of a comment in the first thread)."""
    community = await new_community(client)
    first = await new_thread(client, community["id"], author)
    second = await new_thread(client, community["id"], author)
    comment = await new_comment(client, community["id"], first["id"], author)
    return community["id"], second["id"], comment["id"]


async def test_reply_to_a_comment_of_another_thread_is_not_found(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community_id, second_id, elsewhere_id = await _comment_in_the_first_of_two_threads(client, author)
        failure = await refuse(
            client,
            "create_comment",
            communityId=community_id,
            threadId=second_id,
            userId=author,
            content="Hi",
            parentId=elsewhere_id,
        )
        untouched = await call(client, "get_thread", communityId=community_id, threadId=second_id)
    assert failure == {"error": "not_found", "message": "Parent comment not found in this thread"}
    assert untouched["thread"]["commentCount"] == 0 and untouched["thread"]["comments"] == []
    assert (await row_counts(store))["comments"] == 1


async def test_thread_of_another_community_is_not_found(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        one = await new_community(client)
        two = await new_community(client)
        thread = await new_thread(client, one["id"], tenant.owner_user_id)
        failure = await refuse(client, "get_thread", communityId=two["id"], threadId=thread["id"])
    assert failure == {"error": "not_found", "message": "Thread not found"}


async def test_comment_of_another_thread_is_not_found(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community_id, second_id, comment_id = await _comment_in_the_first_of_two_threads(client, author)
        failure = await refuse(
            client, "delete_comment", communityId=community_id, threadId=second_id, commentId=comment_id
        )
    assert failure == {"error": "not_found", "message": "Comment not found"}
    assert (await row_counts(store))["comments"] == 1


async def test_update_comment_replaces_its_content(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        comment = await new_comment(client, community["id"], thread["id"], author, content="Helo")
        updated = await call(
            client,
            "update_comment",
            communityId=community["id"],
            threadId=thread["id"],
            commentId=comment["id"],
            content="Hello",
        )
    assert updated["comment"]["content"] == "Hello"
    assert updated["comment"]["updatedAt"] >= comment["updatedAt"]


async def test_list_comments_is_flat_oldest_first_and_paginated(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        top = await new_comment(client, community["id"], thread["id"], author)
        reply = await new_comment(client, community["id"], thread["id"], author, parent_id=top["id"])
        last = await new_comment(client, community["id"], thread["id"], author)
        first_page = await call(
            client, "list_comments", communityId=community["id"], threadId=thread["id"], limit=2
        )
        second_page = await call(
            client, "list_comments", communityId=community["id"], threadId=thread["id"], limit=2, page=2
        )
    assert [(c["id"], c["parentId"]) for c in first_page["data"]] == [
        (top["id"], None),
        (reply["id"], top["id"]),
    ]
    assert [c["id"] for c in second_page["data"]] == [last["id"]]
    assert first_page["pagination"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2, "hasMore": True}


async def test_delete_thread_removes_its_comments(store, tenant):
    author = tenant.owner_user_id
    async with mcp_client(store, tenant.key) as client:
        community = await new_community(client)
        thread = await new_thread(client, community["id"], author)
        kept = await new_thread(client, community["id"], author)
        top = await new_comment(client, community["id"], thread["id"], author)
        await new_comment(client, community["id"], thread["id"], author, parent_id=top["id"])
        await new_comment(client, community["id"], kept["id"], author)
        deleted = await call(client, "delete_thread", communityId=community["id"], threadId=thread["id"])
        gone = await refuse(client, "get_thread", communityId=community["id"], threadId=thread["id"])
    assert deleted == {"deleted": True, "id": thread["id"], "commentsDeleted": 2}
    assert gone["error"] == "not_found"
    assert (await row_counts(store))["comments"] == 1


async def _thread_with_comments(
    store, client, tenant, parents: list[int | None]
) -> tuple[str, str, list[str]]:
    community = await new_community(client)
    thread = await new_thread(client, community["id"], tenant.owner_user_id)
    ids = await insert_comments(
        store, thread_id=thread["id"], author_id=tenant.owner_user_id, parents=parents
    )
    return community["id"], thread["id"], ids


async def test_get_thread_with_a_500_deep_reply_chain_nests_32_levels_then_lists_the_rest_flat(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community_id, thread_id, ids = await _thread_with_comments(store, client, tenant, [None, *range(499)])
        got = (await call(client, "get_thread", communityId=community_id, threadId=thread_id))["thread"]

    nested = []
    level = got["comments"]
    for _ in range(MAX_NESTING):
        [node] = level
        nested.append(node["id"])
        level = node["replies"]
    assert nested == ids[:MAX_NESTING]
    assert [c["id"] for c in level] == ids[MAX_NESTING:]
    assert [c["parentId"] for c in level] == ids[MAX_NESTING - 1 : -1]
    assert all(c["replies"] == [] for c in level)
    assert got["commentCount"] == 500
    assert f"{MAX_NESTING} levels" in get_thread.description


async def test_get_thread_runs_the_same_statements_for_5000_comments_or_a_500_deep_chain_as_for_one(
    store, tenant
):
    shuffled = random.Random(5)
    bushy = [None if i % 50 == 0 else shuffled.randrange(i) for i in range(5000)]
    async with mcp_client(store, tenant.key) as client:
        await call(client, "whoami")  # the key's last-used time is written once, not on every call
        cases = {
            "one": await _thread_with_comments(store, client, tenant, [None]),
            "bushy": await _thread_with_comments(store, client, tenant, bushy),
            "chain": await _thread_with_comments(store, client, tenant, [None, *range(499)]),
        }
        counted = {}
        for name, (community_id, thread_id, _) in cases.items():
            with statements(store) as seen:
                got = await call(client, "get_thread", communityId=community_id, threadId=thread_id)
            counted[name] = seen
            assert got["thread"]["commentCount"] == len(cases[name][2])

    assert len(counted["one"]) == len(counted["bushy"]) == len(counted["chain"]) <= 6
    assert sum("FROM comments" in sql for sql in counted["bushy"]) == 1


async def test_bushy_5000_comment_tree_keeps_every_comment_under_its_parent(store, tenant):
    shuffled = random.Random(7)
    parents = [None if i % 100 == 0 else shuffled.randrange(max(0, i - 5), i) for i in range(5000)]
    async with mcp_client(store, tenant.key) as client:
        community_id, thread_id, ids = await _thread_with_comments(store, client, tenant, parents)
        got = (await call(client, "get_thread", communityId=community_id, threadId=thread_id))["thread"]

    seen = []
    pending = [(node, None, 1) for node in got["comments"]]
    while pending:
        node, holder, level = pending.pop()
        seen.append((node["id"], node["parentId"]))
        if level <= MAX_NESTING:  # below that, replies are listed flat under their level-32 ancestor
            assert node["parentId"] == holder
        pending.extend((reply, node["id"], level + 1) for reply in node["replies"])
    assert sorted(seen) == sorted((ids[i], None if p is None else ids[p]) for i, p in enumerate(parents))


async def test_deleting_the_root_of_a_2000_deep_chain_removes_it_all(store, tenant):
    """Deeper than SQLite's 1000-level cascade limit: the subtree goes in one statement instead."""
    async with mcp_client(store, tenant.key) as client:
        community_id, thread_id, ids = await _thread_with_comments(
            store, client, tenant, [None, *range(1999), None]
        )
        await call(client, "delete_comment", communityId=community_id, threadId=thread_id, commentId=ids[0])
        got = (await call(client, "get_thread", communityId=community_id, threadId=thread_id))["thread"]
    assert [c["id"] for c in got["comments"]] == [ids[-1]]
    assert got["commentCount"] == 1
    assert (await row_counts(store))["comments"] == 1


async def test_deleting_a_thread_with_a_2000_deep_chain_works(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        community_id, thread_id, _ = await _thread_with_comments(store, client, tenant, [None, *range(1999)])
        await call(client, "delete_thread", communityId=community_id, threadId=thread_id)
    assert (await row_counts(store))["comments"] == 0
