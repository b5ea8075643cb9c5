"""Reject{Follow}: a remote actor refused our follow (or removed us as a follower), or a relay
our subscription."""

from __future__ import annotations

import logging

from inbox.context import InboxContext
from inbox.handlers._follow_answer import answered_follow
from node import relays
from node.posts.incoming import answer_received

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    if await answer_received(ctx.node, ctx.actor_uri, ctx.activity, accepted=False):
        return  # Reject{Offer}: a response of one of our members was declined
    if await relays.follow_answered(ctx.node, ctx.actor_uri, ctx.activity, accepted=False):
        return
    row = await answered_follow(ctx)
    if row is None:
        log.info("Reject from %s answers no follow of ours; ignored", ctx.actor_uri)
        return
    await ctx.node.db.execute("DELETE FROM follows WHERE id = :i", {"i": row["id"]})
