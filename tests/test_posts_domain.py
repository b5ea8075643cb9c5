"""The posts domain called directly (node/posts/service.py, responses.py) on a real SQLite
database: races and refusals that the pages cannot easily provoke."""

from __future__ import annotations

import asyncio
import time

import pytest

from node.posts import places, responses, service
from node.posts.responses import ResponseError
from node.posts.validation import PostError, validate
from tests.test_posts_pages import NEED, member


async def a_user(node, email: str, role: str = "member") -> dict:
    user_id = await member(node, email, role=role)
    return await node.db.fetch_one("SELECT * FROM users WHERE id = :i", {"i": user_id})


async def a_need(node, author: dict) -> dict:
    form = {k: v for k, v in NEED.items() if k != "languages"}
    fields = validate(form, NEED["languages"], "need", neighbourhoods=places.BRUSSELS,
                      now=time.time(), need_expiry_days=30, may_proxy=False)
    return await service.create_post(node, author, fields)


async def test_accepts_at_once_never_exceed_the_capacity(app_node):
    node, _client = app_node
    author = await a_user(node, "a@example.org")
    post = await a_need(node, author)  # capacity 2
    helpers = [await responses.respond(node, await a_user(node, f"{n}@example.org"), post,
                                       f"Me {n}") for n in "bcd"]
    outcomes = await asyncio.gather(*(responses.accept(node, author, post, r) for r in helpers),
                                    return_exceptions=True)
    assert sum(isinstance(o, dict) for o in outcomes) == 2
    assert all(isinstance(o, PostError | ResponseError) for o in outcomes
               if not isinstance(o, dict))
    statuses = sorted(r["status"] for r in await node.db.fetch_all("SELECT * FROM responses"))
    assert statuses == ["accepted", "accepted", "not_needed"]
    assert await node.db.fetch_val("SELECT status FROM posts") == "in_progress"


async def test_closed_posts_and_oversized_messages_take_no_response(app_node):
    node, _client = app_node
    author = await a_user(node, "a@example.org")
    helper = await a_user(node, "h@example.org")
    post = await a_need(node, author)
    with pytest.raises(ResponseError) as caught:
        await responses.respond(node, helper, post, "x" * 5001)
    assert "5000" in caught.value.errors["message"]
    withdrawn = await service.change_status(node, post, "withdrawn")
    with pytest.raises(ResponseError):
        await responses.respond(node, helper, withdrawn, "Still there?")
    assert await node.db.fetch_val("SELECT COUNT(*) FROM responses") == 0
    with pytest.raises(PostError):
        await service.change_status(node, withdrawn, "open")
