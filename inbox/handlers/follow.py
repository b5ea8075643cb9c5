"""Follow: someone wants to follow a local actor. Groups accept at once unless they approve by
hand. The instance actor is followed only by the relays the admin subscribed to (node/relays.py);
anyone else gets a Reject."""

from __future__ import annotations

from activitypub.vocab import id_of
from inbox.context import ActivityRejected, InboxContext
from node import relays
from node.actors import by_uri
from node.follows import answer_follow, record_follow


async def handle(ctx: InboxContext) -> None:
    target = await by_uri(ctx.node, id_of(ctx.object) or "")
    if target is not None and target.kind == "Application":
        if not await relays.follow_back(ctx.node, ctx.actor_uri, ctx.activity):
            await relays.refuse_follow(ctx.node, ctx.actor_uri, ctx.activity)
        return
    if target is None:
        raise ActivityRejected("Follow of an actor this node does not have")
    await record_follow(ctx.node, ctx.actor_uri, id_of(ctx.object), ctx.activity["id"], "pending")
    if not target.manually_approves:
        await answer_follow(ctx.node, target, ctx.actor_uri, accept=True)
