"""Delete: an object its author removed, or an actor that is gone with everything it had."""

from __future__ import annotations

import logging

from activitypub.vocab import id_of
from inbox.context import InboxContext
from node.objects import get_object, mark_deleted
from node.posts.incoming import post_deleted

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    target = id_of(ctx.object)
    db = ctx.node.db
    if target == ctx.actor_uri:
        await db.execute(
            "DELETE FROM follows WHERE follower_uri = :a OR followee_uri = :a", {"a": target}
        )
        await db.execute("DELETE FROM reactions WHERE actor_uri = :a", {"a": target})
        for row in await db.fetch_all(
            "SELECT uri FROM objects WHERE attributed_to = :a AND deleted = 0", {"a": target}
        ):
            await mark_deleted(ctx.node, row["uri"])
        await db.execute("DELETE FROM remote_actors WHERE uri = :a", {"a": target})
        return
    existing = await get_object(ctx.node, target or "")
    if existing is None:
        return
    if existing["attributed_to"] != ctx.actor_uri:
        log.info("Delete of %s by %s, who is not its author; ignored", target, ctx.actor_uri)
        return
    await mark_deleted(ctx.node, target)
    await post_deleted(ctx.node, target)
