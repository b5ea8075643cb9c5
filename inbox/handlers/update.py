"""Update: an edited object, or an actor's new profile (which refreshes our cached copy)."""

from __future__ import annotations

import logging

from activitypub.vocab import ACTOR_TYPES, id_of, types_of
from inbox.context import ActivityRejected, InboxContext
from node.objects import get_object, store_object
from node.posts.incoming import post_updated
from node.remote_actors import parse_actor, store_actor

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    obj = ctx.object
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise ActivityRejected("Update must embed the updated object")
    if types_of(obj) & ACTOR_TYPES:
        if obj["id"] != ctx.actor_uri:
            raise ActivityRejected("an actor can only update its own profile")
        await store_actor(ctx.node, parse_actor(obj, ctx.actor_uri))
        return
    existing = await get_object(ctx.node, obj["id"])
    if existing is None:
        log.info("Update of unknown object %s; ignored", obj["id"])
        return
    if existing["attributed_to"] != ctx.actor_uri or id_of(obj.get("attributedTo")) not in (
        None, ctx.actor_uri
    ):
        raise ActivityRejected("only the author can update an object")
    await store_object(ctx.node, obj, local=False)
    await post_updated(ctx.node, ctx.actor_uri, obj)
