"""Announce: a boost of one of our objects, or a group we follow relaying a post (FEP-1b12)."""

from __future__ import annotations

import logging

from activitypub.transport import FetchError
from activitypub.vocab import id_of
from inbox.context import InboxContext
from inbox.handlers._reaction import record_reaction
from inbox.handlers.create import accept_remote_object, followed_locally
from node.actors import instance_actor, signing_key

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    if await record_reaction(ctx, "Announce"):
        return
    if not await followed_locally(ctx):
        return
    obj = ctx.object
    if not isinstance(obj, dict):
        # The announced object is only named: fetch it from its origin.
        key = signing_key(ctx.node, await instance_actor(ctx.node))
        try:
            obj = await ctx.node.transport.get_json(id_of(obj) or "", key)
        except FetchError as exc:
            log.info("cannot fetch announced %s: %s", id_of(ctx.object), exc)
            return
    await accept_remote_object(ctx, obj, announced=True)
