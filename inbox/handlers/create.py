"""Create: a new object from a peer. Kept when someone here follows its author, when it is
addressed to or mentions one of our actors, or when it replies to one of our objects.

The ownership rule: the object is its signer's own (author == actor, same origin), never in
this node's name."""

from __future__ import annotations

import logging
from typing import Any

from activitypub.model import InvalidObject, RemoteObject, from_json
from activitypub.origin import may_author
from activitypub.vocab import as_list, id_of
from inbox.context import ActivityRejected, InboxContext
from node.context import Node
from node.objects import get_object, store_model
from node.posts import incoming as posts_incoming
from node.posts.provenance import Provenance, followed_here

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    obj = ctx.object
    if not isinstance(obj, dict):
        raise ActivityRejected("Create must embed the object it creates")
    try:
        model = from_json(obj)
    except InvalidObject as exc:
        raise ActivityRejected(str(exc)) from exc
    if not may_author(ctx.actor_uri, model.id, model.author):
        raise ActivityRejected("an actor can only create objects of its own")
    if ctx.node.is_local(model.id):
        raise ActivityRejected("a peer cannot create objects in this node's name")
    # Offers and needs: a response (kept private, never stored as a public object), or a post
    # kept as such or not at all, as node/posts/provenance.py decides (no spam from strangers).
    if await posts_incoming.reply_received(ctx.node, ctx.actor_uri, obj):
        return
    if posts_incoming.is_offer_or_need(obj):
        await posts_incoming.store_remote_post(ctx.node, model, obj,
                                               Provenance.create(ctx.actor_uri))
        return
    if not (await _replies_to_us(ctx.node, model) or _concerns_us(ctx, model)
            or await followed_locally(ctx.node, model.author)):
        log.info("Create %s from %s concerns nobody here; ignored", model.id, ctx.actor_uri)
        return
    await keep(ctx.node, model)


async def keep(node: Node, model: RemoteObject) -> None:
    if not await store_model(node, model, local=False):
        log.info("%s is another author's or was deleted; not stored", model.id)


async def followed_locally(node: Node, actor: str) -> bool:
    # The same test as for offers and needs (node/posts/provenance.py): one query, one rule.
    return await followed_here(node, actor)


async def _replies_to_us(node: Node, model: RemoteObject) -> bool:
    return bool(model.in_reply_to and node.is_local(model.in_reply_to)
                and await get_object(node, model.in_reply_to))


def _concerns_us(ctx: InboxContext, model: RemoteObject) -> bool:
    node = ctx.node
    # Lemmy addresses a comment to a group on the Create only (FEP-1b12 `audience`, `cc`),
    # not on the Note: the activity's addressing counts as much as the object's.
    on_activity: list[Any] = [id_of(a) for name in ("to", "cc", "audience")
                              for a in as_list(ctx.activity.get(name))]
    audience = [*model.to, *model.cc, *model.mentions, *on_activity]
    return any(node.is_local(a) for a in audience)
