"""Create: a new object from a peer. Kept when someone here follows its author, when it is
addressed to or mentions one of our actors, or when it replies to one of our objects."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from activitypub.vocab import as_list, id_of
from inbox.context import ActivityRejected, InboxContext
from node.objects import get_object, store_object
from node.posts import incoming as posts_incoming

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    obj = ctx.object
    if not isinstance(obj, dict):
        raise ActivityRejected("Create must embed the object it creates")
    await accept_remote_object(ctx, obj, announced=False)


async def followed_locally(ctx: InboxContext) -> bool:
    rows = await ctx.node.db.fetch_all(
        "SELECT follower_uri FROM follows WHERE followee_uri = :a AND state = 'accepted'",
        {"a": ctx.actor_uri},
    )
    return any(ctx.node.is_local(r["follower_uri"]) for r in rows)


def _concerns_us(ctx: InboxContext, obj: dict[str, Any]) -> bool:
    node = ctx.node
    # Lemmy addresses a comment to a group on the Create only (FEP-1b12 `audience`, `cc`),
    # not on the Note: the activity's addressing counts as much as the object's.
    audience = [a for source in (obj, ctx.activity) for field in ("to", "cc", "audience")
                for a in as_list(source.get(field))]
    if any(node.is_local(id_of(a)) for a in audience):
        return True
    return any(
        isinstance(tag, dict) and tag.get("type") == "Mention" and node.is_local(tag.get("href"))
        for tag in as_list(obj.get("tag"))
    )


async def accept_remote_object(ctx: InboxContext, obj: dict[str, Any], announced: bool) -> None:
    uri = obj.get("id")
    author = id_of(obj.get("attributedTo"))
    if not isinstance(uri, str) or not author:
        raise ActivityRejected("the object needs an id and an attributedTo")
    if urlsplit(uri).netloc != urlsplit(author).netloc:
        raise ActivityRejected("the object's id and author are on different hosts")
    if not announced and author != ctx.actor_uri:
        raise ActivityRejected("an actor can only create objects attributed to itself")
    if ctx.node.is_local(uri):
        raise ActivityRejected("a peer cannot create objects in this node's name")
    # Offers and needs: a response (kept private, never stored as a public object) or a post
    # of a followed organisation.
    if not announced and await posts_incoming.reply_received(ctx.node, ctx.actor_uri, obj):
        return
    if await posts_incoming.store_remote_post(ctx.node, ctx.actor_uri, obj) is not None:
        return
    reply_to = id_of(obj.get("inReplyTo"))
    replies_to_us = bool(reply_to and ctx.node.is_local(reply_to) and
                         await get_object(ctx.node, reply_to))
    if not (announced or replies_to_us or _concerns_us(ctx, obj) or await followed_locally(ctx)):
        log.info("Create %s from %s concerns nobody here; ignored", uri, ctx.actor_uri)
        return
    await store_object(ctx.node, obj, local=False)
