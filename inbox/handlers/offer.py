"""Offer: a response to one of our offers or needs (FEP-0837 Offer{Agreement} or the older
Offer(Commitment) with inReplyTo). Mastodon never sends these; our peer nodes do."""

from __future__ import annotations

import logging

from inbox.context import ActivityRejected, InboxContext
from node.posts.incoming import offer_received

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    if not isinstance(ctx.object, dict):
        raise ActivityRejected("an Offer must embed the Agreement or Commitment it offers")
    if not await offer_received(ctx.node, ctx.actor_uri, ctx.activity):
        log.info("Offer %s from %s answers no post of ours; ignored", ctx.activity["id"],
                 ctx.actor_uri)
