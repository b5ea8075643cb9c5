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


async def test_two_accepts_at_once_accept_only_one(app_node):
    node, _client = app_node
    author = await a_user(node, "a@example.org")
    post = await a_need(node, author)
    first = await responses.respond(node, await a_user(node, "b@example.org"), post, "Me")
    second = await responses.respond(node, await a_user(node, "c@example.org"), post, "Me too")
    outcomes = await asyncio.gather(responses.accept(node, post, first),
                                    responses.accept(node, post, second),
                                    return_exceptions=True)
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, PostError | ResponseError) for o in outcomes if o is not None)
    statuses = sorted(r["status"] for r in await node.db.fetch_all("SELECT * FROM responses"))
    assert statuses == ["accepted", "declined"]


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
