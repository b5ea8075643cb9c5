"""What Accept and Reject of a Follow share: finding the follow they answer."""

from __future__ import annotations

from activitypub.vocab import id_of, types_of
from inbox.context import InboxContext


async def answered_follow(ctx: InboxContext) -> dict | None:
    """The local follow of the sender that this Accept/Reject answers, if any."""
    obj = ctx.object
    follow_id = id_of(obj)
    row = None
    if follow_id:
        row = await ctx.node.db.fetch_one(
            "SELECT * FROM follows WHERE activity_id = :a AND followee_uri = :e",
            {"a": follow_id, "e": ctx.actor_uri},
        )
    if row is None and isinstance(obj, dict) and "Follow" in types_of(obj):
        # Some servers answer with a Follow of their own making: match on who follows whom.
        row = await ctx.node.db.fetch_one(
            "SELECT * FROM follows WHERE follower_uri = :f AND followee_uri = :e",
            {"f": id_of(obj.get("actor")), "e": ctx.actor_uri},
        )
    if row is None or not ctx.node.is_local(row["follower_uri"]):
        return None
    return row
