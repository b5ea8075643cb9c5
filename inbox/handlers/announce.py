"""Announce: a boost of one of our objects, or a group we follow relaying a post (FEP-1b12).

An embedded object is trusted only when it comes from the announcer's own server; any other is
fetched from its origin (as Mastodon's `announce.rb`), so that nobody can put words in another
author's mouth — least of all in this node's."""

from __future__ import annotations

import logging

from activitypub.model import InvalidObject, from_json
from activitypub.origin import same_origin
from activitypub.vocab import id_of
from inbox.context import InboxContext
from inbox.dereference import fetch_object
from inbox.handlers._reaction import record_reaction
from inbox.handlers.create import followed_locally, keep
from node.objects import get_object
from node.posts import incoming as posts_incoming
from node.posts.provenance import Provenance

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    if await record_reaction(ctx, "Announce"):
        return
    target = id_of(ctx.object)
    if not target or ctx.node.is_local(target):
        log.info("Announce of %r by %s: not one of our objects; ignored", target, ctx.actor_uri)
        return
    if not await followed_locally(ctx.node, ctx.actor_uri):
        return
    known = await get_object(ctx.node, target)
    if known is not None and known["deleted"]:
        return  # a deleted object stays deleted
    embedded = ctx.object if isinstance(ctx.object, dict) else None
    if embedded is not None and same_origin(target, ctx.actor_uri):
        try:
            model, raw = from_json(embedded), embedded
        except InvalidObject as exc:
            log.info("Announce embeds an object that is not kept: %s", exc)
            return
    else:
        fetched = await fetch_object(ctx.node, target)
        if fetched is None:
            return
        model, raw = fetched
    if posts_incoming.is_offer_or_need(raw):
        # Kept as a post or not at all (node/posts/provenance.py).
        await posts_incoming.store_remote_post(ctx.node, model, raw,
                                               Provenance.announce(ctx.actor_uri))
        return
    await keep(ctx.node, model)
