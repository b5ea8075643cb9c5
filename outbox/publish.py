"""Publishing: an activity is stored first, then queued for every inbox it is addressed to."""

from __future__ import annotations

from typing import Any

from activitypub.vocab import id_of, is_public
from node.actors import LocalActor, actor_uri
from node.context import Node
from node.db import dumps, now
from outbox.addressing import inboxes_for, relay_inboxes
from outbox.queue import enqueue


async def publish(
    node: Node, actor: LocalActor, activity: dict[str, Any], extra_inboxes: list[str] = ()
) -> int:
    """Store `activity` and queue its delivery; returns how many inboxes it goes to."""
    sender = actor_uri(node, actor)
    obj = activity.get("object")
    await node.db.execute(
        "INSERT INTO activities (uri, actor_uri, type, object_uri, public, payload, created_at) "
        "VALUES (:u, :a, :t, :o, :p, :j, :c) ON CONFLICT (uri) DO NOTHING",
        {
            "u": activity["id"], "a": sender, "t": activity["type"], "o": id_of(obj),
            "p": int(is_public(activity)), "j": dumps(activity), "c": now(),
        },
    )
    inboxes = await inboxes_for(node, activity, sender)
    inboxes += [i for i in [*extra_inboxes, *await relay_inboxes(node, activity)]
                if i not in inboxes]
    count = await enqueue(node, activity["id"], actor.id, inboxes)
    node.notify_worker()
    return count
