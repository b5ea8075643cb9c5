"""Reject{Follow}: a remote actor refused our follow (or removed us as a follower)."""

from __future__ import annotations

import logging

from inbox.context import InboxContext
from inbox.handlers._follow_answer import answered_follow

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    row = await answered_follow(ctx)
    if row is None:
        log.info("Reject from %s answers no follow of ours; ignored", ctx.actor_uri)
        return
    await ctx.node.db.execute("DELETE FROM follows WHERE id = :i", {"i": row["id"]})
