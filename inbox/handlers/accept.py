"""Accept{Follow}: a remote actor accepted our follow, or a relay our subscription."""

from __future__ import annotations

import logging

from inbox.context import InboxContext
from inbox.handlers._follow_answer import answered_follow
from node import backfill, relays
from node.posts.incoming import answer_received

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    if await answer_received(ctx.node, ctx.actor_uri, ctx.activity, accepted=True):
        return  # Accept{Offer}: a response of one of our members was accepted
    if await relays.follow_answered(ctx.node, ctx.actor_uri, ctx.activity, accepted=True):
        return
    row = await answered_follow(ctx)
    if row is None:
        log.info("Accept from %s answers no follow of ours; ignored", ctx.actor_uri)
        return
    await ctx.node.db.execute(
        "UPDATE follows SET state = 'accepted' WHERE id = :i", {"i": row["id"]}
    )
    # What they posted before the follow: read from their outbox in the background.
    await backfill.schedule(ctx.node, row["followee_uri"])
