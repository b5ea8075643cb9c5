"""Flag: another server reports an account or a post of this node to its moderators."""

from __future__ import annotations

from activitypub.vocab import as_list, id_of
from inbox.context import ActivityRejected, InboxContext
from node.moderation.reports import receive_flag


async def handle(ctx: InboxContext) -> None:
    targets = [uri for uri in (id_of(item) for item in as_list(ctx.object)) if uri]
    if not targets:
        raise ActivityRejected("a Flag must name the reported account or post")
    if await receive_flag(ctx.node, ctx.activity, ctx.actor_uri, targets[:20]) is None:
        # Already filed (the same Flag delivered twice) is not an error; naming nothing here is.
        already = await ctx.node.db.fetch_val(
            "SELECT 1 FROM reports WHERE activity_id = :i", {"i": ctx.activity["id"]})
        if not already:
            raise ActivityRejected("the Flag names no account or post of this node")
