"""Update: an edited object, or an actor's new profile (which refreshes our cached copy).
Only the author, through its own server, changes an object (the ownership rule)."""

from __future__ import annotations

import logging

from activitypub.model import InvalidObject, from_json
from activitypub.origin import may_author
from activitypub.vocab import ACTOR_TYPES, types_of
from inbox.context import ActivityRejected, InboxContext
from node.objects import get_object, store_model
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
    if "attributedTo" not in obj:
        # Mastodon's own Update handling names no author either: the stored row's author
        # must be the actor, which is checked below.
        obj = {**obj, "attributedTo": ctx.actor_uri}
    try:
        model = from_json(obj)
    except InvalidObject as exc:
        raise ActivityRejected(str(exc)) from exc
    if not may_author(ctx.actor_uri, model.id, model.author):
        raise ActivityRejected("only the author can update an object")
    existing = await get_object(ctx.node, model.id)
    if existing is None or existing["deleted"]:
        log.info("Update of unknown or deleted object %s; ignored", model.id)
        return
    if existing["attributed_to"] != ctx.actor_uri or existing["local"]:
        raise ActivityRejected("only the author can update an object")
    await store_model(ctx.node, model, local=False)
    await post_updated(ctx.node, model, obj, ctx.actor_uri)
