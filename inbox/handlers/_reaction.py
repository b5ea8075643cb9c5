"""What Like and Announce share: counting a reaction to one of our objects."""

from __future__ import annotations

from activitypub.vocab import id_of
from inbox.context import InboxContext
from node.db import now


async def record_reaction(ctx: InboxContext, kind: str) -> bool:
    """Count the reaction if it is about an object of this node; returns whether it was."""
    target = id_of(ctx.object)
    if not target or not ctx.node.is_local(target):
        return False
    # Ours, but only counted when it exists: a reaction to an id we never published is noise.
    if not await ctx.node.db.fetch_val(
            "SELECT 1 FROM objects WHERE uri = :u AND deleted = 0", {"u": target}):
        return True
    await ctx.node.db.execute(
        "INSERT INTO reactions (activity_id, type, actor_uri, object_uri, created_at) "
        "VALUES (:a, :t, :f, :o, :c) ON CONFLICT DO NOTHING",
        {"a": ctx.activity["id"], "t": kind, "f": ctx.actor_uri, "o": target, "c": now()},
    )
    return True
