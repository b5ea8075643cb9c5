"""Update and Delete that a relay forwards: the relay signs them, not their actor (LitePub
relays pass them on as they came, without a signature of the author that we could check). They
count only as far as the author's own server confirms them, as an Announce's object is fetched
from its origin: an Update is taken with the object as its origin serves it now, a Delete only
when the origin no longer has the object."""

from __future__ import annotations

import logging
from typing import Any

from activitypub.origin import same_origin
from activitypub.transport import FetchError
from activitypub.vocab import id_of, types_of
from node.actors import instance_actor, signing_key
from node.context import Node
from node.relays import subscribed_relay

log = logging.getLogger(__name__)

GONE = (404, 410)


async def confirmed_by_origin(
    node: Node, signer: str, activity: dict[str, Any]
) -> dict[str, Any] | None:
    """The activity to process as its actor's, or None when it is not a subscribed relay's
    forwarding or the origin does not confirm it."""
    if activity.get("type") not in ("Update", "Delete"):
        return None
    if await subscribed_relay(node, signer) is None:
        return None
    actor = id_of(activity.get("actor"))
    target = id_of(activity.get("object"))
    if not target or target == actor or not same_origin(target, actor):
        return None  # actors' own updates and deletes are not taken second hand
    key = signing_key(node, await instance_actor(node))
    try:
        doc = await node.transport.get_json(target, key)
    except FetchError as exc:
        if activity["type"] == "Delete" and exc.status in GONE:
            return activity
        log.info("relayed %s of %s: origin unreachable (%s)", activity["type"], target, exc)
        return None
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("id") != target:
        return None
    if activity["type"] == "Delete":
        return activity if "Tombstone" in types_of(doc) else None
    if "Tombstone" in types_of(doc):
        return None
    return {**activity, "object": doc}
