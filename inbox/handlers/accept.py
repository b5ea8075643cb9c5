"""Accept{Follow}: a remote actor accepted our follow."""

from __future__ import annotations

import logging

from inbox.context import InboxContext
from inbox.handlers._follow_answer import answered_follow

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    row = await answered_follow(ctx)
    if row is None:
        log.info("Accept from %s answers no follow of ours; ignored", ctx.actor_uri)
        return
    await ctx.node.db.execute(
        "UPDATE follows SET state = 'accepted' WHERE id = :i", {"i": row["id"]}
    )
