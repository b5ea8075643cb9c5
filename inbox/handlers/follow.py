"""Follow: someone wants to follow a local actor. Groups accept at once unless they approve by
hand."""

from __future__ import annotations

from activitypub.vocab import id_of
from inbox.context import ActivityRejected, InboxContext
from node.actors import by_uri
from node.follows import answer_follow, record_follow


async def handle(ctx: InboxContext) -> None:
    target = await by_uri(ctx.node, id_of(ctx.object) or "")
    if target is None or target.kind == "Application":
        raise ActivityRejected("Follow of an actor this node does not have")
    await record_follow(ctx.node, ctx.actor_uri, id_of(ctx.object), ctx.activity["id"], "pending")
    if not target.manually_approves:
        await answer_follow(ctx.node, target, ctx.actor_uri, accept=True)
