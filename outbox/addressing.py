"""Who receives an activity: its audience turned into inbox URLs, one per shared inbox."""

from __future__ import annotations

import logging
from typing import Any

from activitypub.transport import FetchError
from activitypub.vocab import ACTOR_TYPES, PUBLIC_ALIASES, as_list, id_of, is_public, types_of
from node.context import Node
from node.remote_actors import get_actor

log = logging.getLogger(__name__)

AUDIENCE_FIELDS = ("to", "cc", "bto", "bcc", "audience")
# What relays pass on: public posts, their edits and their removal (as Mastodon sends them).
RELAYED_TYPES = {"Create", "Update", "Delete"}


async def follower_inboxes(node: Node, actor_uri: str) -> list[str]:
    rows = await node.db.fetch_all(
        "SELECT COALESCE(r.shared_inbox, r.inbox) AS inbox FROM follows f "
        "JOIN remote_actors r ON r.uri = f.follower_uri "
        "WHERE f.followee_uri = :a AND f.state = 'accepted'",
        {"a": actor_uri},
    )
    return [r["inbox"] for r in rows]


async def relay_inboxes(node: Node, activity: dict[str, Any]) -> list[str]:
    """The inboxes of the relays the node is subscribed to (node/relays.py), for a public post,
    its edit or its removal; nothing for anything else (profiles, follows, reactions)."""
    obj = activity.get("object")
    if activity.get("type") not in RELAYED_TYPES or not is_public(activity):
        return []
    if isinstance(obj, dict) and types_of(obj) & ACTOR_TYPES or id_of(obj) == activity["actor"]:
        return []
    rows = await node.db.fetch_all("SELECT inbox FROM relays WHERE state = 'subscribed'")
    return [r["inbox"] for r in rows]


async def inboxes_for(node: Node, activity: dict[str, Any], actor_uri: str) -> list[str]:
    inboxes: dict[str, None] = {}
    followers = f"{actor_uri}/followers"
    for field in AUDIENCE_FIELDS:
        for target in as_list(activity.get(field)):
            uri = id_of(target)
            if not uri or uri in PUBLIC_ALIASES or node.is_local(uri) and uri != followers:
                continue
            if uri == followers:
                inboxes.update(dict.fromkeys(await follower_inboxes(node, actor_uri)))
                continue
            try:
                remote = await get_actor(node, uri)
            except FetchError as exc:
                # An unreachable recipient must not stop delivery to the others.
                log.warning("cannot address %s: %s", uri, exc)
                continue
            inboxes[remote.delivery_inbox] = None
    return list(inboxes)
