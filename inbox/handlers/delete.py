"""Delete: an object its author removed, or an actor that is gone with everything it had.
Only the author deletes (the ownership rule); a Delete that arrives before its object is kept
as a tombstone so that the object never appears afterwards."""

from __future__ import annotations

import logging

from activitypub.origin import may_author, same_origin
from activitypub.vocab import id_of
from inbox.context import InboxContext
from keys.cache import changed as key_changed
from node.objects import get_object, mark_deleted, record_tombstone
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
            await post_deleted(ctx.node, row["uri"], target)
        await db.execute("DELETE FROM remote_actors WHERE uri = :a", {"a": target})
        key_changed(ctx.node, target)
        return
    if not target or ctx.node.is_local(target) or not same_origin(target, ctx.actor_uri):
        log.info("Delete of %r by %s, who cannot own it; ignored", target, ctx.actor_uri)
        return
    existing = await get_object(ctx.node, target)
    if existing is None:
        await record_tombstone(ctx.node, target, ctx.actor_uri)
        await post_deleted(ctx.node, target, ctx.actor_uri)
        return
    if not may_author(ctx.actor_uri, target, existing["attributed_to"]):
        log.info("Delete of %s by %s, who is not its author; ignored", target, ctx.actor_uri)
        return
    await mark_deleted(ctx.node, target)
    await post_deleted(ctx.node, target, ctx.actor_uri)
