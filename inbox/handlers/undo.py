"""Undo of a Follow, a Like, an Announce or the Accept of a response; only the actor who did
it can undo it."""

from __future__ import annotations

import logging

from activitypub.vocab import id_of, types_of
from inbox.context import InboxContext
from node.posts.incoming import answer_undone

log = logging.getLogger(__name__)


async def handle(ctx: InboxContext) -> None:
    obj = ctx.object
    undone_id = id_of(obj)
    kinds = types_of(obj)
    db = ctx.node.db
    if isinstance(obj, dict) and id_of(obj.get("actor")) not in (None, ctx.actor_uri):
        log.info("Undo by %s of someone else's activity; ignored", ctx.actor_uri)
        return
    if "Follow" in kinds or not kinds:
        target = id_of(obj.get("object")) if isinstance(obj, dict) else None
        if target:
            await db.execute(
                "DELETE FROM follows WHERE follower_uri = :f AND followee_uri = :e",
                {"f": ctx.actor_uri, "e": target},
            )
        elif undone_id:
            await db.execute(
                "DELETE FROM follows WHERE follower_uri = :f AND activity_id = :a",
                {"f": ctx.actor_uri, "a": undone_id},
            )
    if kinds & {"Like", "Announce"} or not kinds:
        await db.execute(
            "DELETE FROM reactions WHERE activity_id = :a AND actor_uri = :f",
            {"a": undone_id, "f": ctx.actor_uri},
        )
        if isinstance(obj, dict) and id_of(obj.get("object")):
            await db.execute(
                "DELETE FROM reactions WHERE actor_uri = :f AND object_uri = :o AND type = :t",
                {"f": ctx.actor_uri, "o": id_of(obj.get("object")),
                 "t": "Like" if "Like" in kinds else "Announce"},
            )
    if "Accept" in kinds:
        await answer_undone(ctx.node, ctx.actor_uri, obj)
