"""Relays: the admin subscribes the node to relays, which pass every public post of their
subscribers to all the others. Two styles, told apart by the address the admin pastes:

- LitePub (Pleroma, `activityrelay`): the address of the relay's actor. The instance actor
  `/actor` (an `Application`; such relays refuse any other kind) follows it; the relay accepts
  and follows `/actor` back, which this node accepts for a relay it subscribed to only.
- Mastodon: the relay's inbox (`https://relay.example/inbox`). The instance actor sends a
  `Follow` of the public collection there; the relay's actor becomes known from its `Accept`.

Our public posts then go to every subscribed relay's inbox (outbox/addressing.py), and what a
subscribed relay announces is taken in, fetched from its origin (inbox/handlers/announce.py).
The subscription lives in the `relays` table; `state` is pending, subscribed, refused or
failed, with `state_at` saying when it got there."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from activitypub.origin import is_http_url, same_origin
from activitypub.transport import FetchError
from activitypub.vocab import AS_CONTEXT, PUBLIC, id_of
from node.actors import actor_uri, instance_actor
from node.context import Node
from node.db import now
from node.follows import activity_uri, answer_follow, record_follow
from node.remote_actors import fetch_actor
from outbox.publish import publish

log = logging.getLogger(__name__)

URL_MAX = 500


class RelayError(ValueError):
    """The address names no relay this node can subscribe to; `reason` says why, in words the
    admin page translates."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Relay:
    id: int
    url: str
    style: str
    actor_uri: str | None
    inbox: str
    follow_id: str
    state: str
    detail: str | None
    state_at: float
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> Relay:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def style_of(url: str) -> str:
    """Mastodon's relay settings take the relay's inbox; LitePub relays are named by actor."""
    return "mastodon" if urlsplit(url).path.rstrip("/").endswith("/inbox") else "litepub"


async def relays(node: Node) -> list[Relay]:
    rows = await node.db.fetch_all("SELECT * FROM relays ORDER BY created_at, id")
    return [Relay.from_row(r) for r in rows]


async def get(node: Node, relay_id: int) -> Relay | None:
    row = await node.db.fetch_one("SELECT * FROM relays WHERE id = :i", {"i": relay_id})
    return Relay.from_row(row) if row is not None else None


async def subscribed_relay(node: Node, actor: str) -> Relay | None:
    """The relay whose actor this is, when the node is subscribed to it."""
    row = await node.db.fetch_one(
        "SELECT * FROM relays WHERE actor_uri = :a AND state = 'subscribed'", {"a": actor})
    return Relay.from_row(row) if row is not None else None


async def _set_state(node: Node, relay_id: int, state: str, detail: str | None = None,
                     actor: str | None = None) -> None:
    await node.db.execute(
        "UPDATE relays SET state = :s, detail = :d, state_at = :t, "
        "actor_uri = COALESCE(:a, actor_uri) WHERE id = :i",
        {"s": state, "d": detail, "t": now(), "a": actor, "i": relay_id},
    )


async def subscribe(node: Node, url: str, again: bool = False) -> Relay:
    """Subscribe to the relay at `url` (its actor, or its inbox for a Mastodon-style relay).
    Subscribing again to a refused or failed relay sends a new Follow; to a subscribed one,
    nothing; to a pending one, only when the admin asks `again` (a relay that lost the Follow,
    or was down when it came, never answers it)."""
    url = url.strip()
    if len(url) > URL_MAX or not is_http_url(url):
        raise RelayError("not_a_link")
    if node.is_local(url):
        raise RelayError("local")
    existing = await node.db.fetch_one("SELECT * FROM relays WHERE url = :u", {"u": url})
    if existing is not None and (existing["state"] == "subscribed"
                                 or existing["state"] == "pending" and not again):
        return Relay.from_row(existing)
    style = style_of(url)
    actor: str | None = None
    inbox = url
    if style == "litepub":
        try:
            remote = await fetch_actor(node, url)
        except (FetchError, ValueError) as exc:
            log.info("relay %s: %s", url, exc)
            raise RelayError("no_actor") from exc
        if not same_origin(remote.uri, url):
            raise RelayError("no_actor")
        actor, inbox = remote.uri, remote.delivery_inbox
    me = await instance_actor(node)
    follow = {
        "@context": AS_CONTEXT, "id": activity_uri(node), "type": "Follow",
        "actor": actor_uri(node, me), "object": actor or PUBLIC,
    }
    if actor:
        follow["to"] = [actor]
    stamp = now()
    await node.db.execute(
        "INSERT INTO relays (url, style, actor_uri, inbox, follow_id, state, state_at, "
        "created_at) VALUES (:u, :s, :a, :i, :f, 'pending', :t, :t) ON CONFLICT (url) DO UPDATE "
        "SET style = excluded.style, actor_uri = excluded.actor_uri, inbox = excluded.inbox, "
        "follow_id = excluded.follow_id, state = 'pending', detail = NULL, "
        "state_at = excluded.state_at",
        {"u": url, "s": style, "a": actor, "i": inbox, "f": follow["id"], "t": stamp},
    )
    # Addressed by `to` for LitePub; a Mastodon relay is reached at the inbox it was given.
    await publish(node, me, follow, extra_inboxes=[] if actor else [inbox])
    relay = await node.db.fetch_one("SELECT * FROM relays WHERE url = :u", {"u": url})
    return Relay.from_row(relay)


async def unsubscribe(node: Node, relay_id: int) -> bool:
    """Send `Undo{Follow}` to the relay and forget it, with the follows both ways."""
    relay = await get(node, relay_id)
    if relay is None:
        return False
    me = await instance_actor(node)
    mine = actor_uri(node, me)
    await node.db.execute("DELETE FROM relays WHERE id = :i", {"i": relay.id})
    if relay.actor_uri:
        await _forget_follows(node, mine, relay.actor_uri)
    undo = {
        "@context": AS_CONTEXT, "id": activity_uri(node), "type": "Undo", "actor": mine,
        "object": {"id": relay.follow_id, "type": "Follow", "actor": mine,
                   "object": relay.actor_uri if relay.style == "litepub" else PUBLIC},
    }
    await publish(node, me, undo, extra_inboxes=[relay.inbox])
    return True


async def _answered(node: Node, sender: str, activity: dict[str, Any]) -> Relay | None:
    """The relay subscription an Accept or Reject from `sender` answers: our Follow's id,
    from the relay's own actor (LitePub) or from the origin of the inbox we wrote to."""
    obj = activity.get("object")
    row = await node.db.fetch_one(
        "SELECT * FROM relays WHERE follow_id = :f", {"f": id_of(obj) or ""})
    if row is None:
        return None
    relay = Relay.from_row(row)
    if relay.actor_uri == sender or relay.actor_uri is None and same_origin(sender, relay.inbox):
        return relay
    log.info("%s answers the relay follow of %s, which it is not; ignored", sender, relay.url)
    return None


async def follow_answered(node: Node, sender: str, activity: dict[str, Any],
                          accepted: bool) -> bool:
    """An Accept or Reject of one of our relay Follows: the subscription's new state.
    False when the activity answers no relay subscription."""
    relay = await _answered(node, sender, activity)
    if relay is None:
        return False
    await _set_state(node, relay.id, "subscribed" if accepted else "refused", actor=sender)
    mine = actor_uri(node, await instance_actor(node))
    if accepted:
        # The relay is then an actor this node follows, and the rules that admit what followed
        # actors send (inbox/handlers/announce.py, node/posts/provenance.py) apply to it.
        await record_follow(node, mine, sender, relay.follow_id, "accepted")
    else:
        await _forget_follows(node, mine, sender)
    return True


async def _forget_follows(node: Node, mine: str, relay_actor: str) -> None:
    await node.db.execute(
        "DELETE FROM follows WHERE follower_uri = :m AND followee_uri = :r "
        "OR follower_uri = :r AND followee_uri = :m", {"m": mine, "r": relay_actor})


async def follow_back(node: Node, sender: str, activity: dict[str, Any]) -> bool:
    """A relay we subscribed to follows `/actor` back (LitePub relays do): accepted, so that it
    lists this node among its subscribers. False for anyone else: the caller refuses them."""
    rows = await node.db.fetch_all(
        "SELECT actor_uri, inbox FROM relays WHERE state IN ('pending', 'subscribed')")
    # A Mastodon-style relay may follow back before its Accept has named its actor.
    if not any(r["actor_uri"] == sender or r["actor_uri"] is None
               and same_origin(sender, r["inbox"]) for r in rows):
        return False
    me = await instance_actor(node)
    await record_follow(node, sender, actor_uri(node, me), activity["id"], "pending")
    await answer_follow(node, me, sender, accept=True)
    return True


async def refuse_follow(node: Node, sender: str, activity: dict[str, Any]) -> None:
    """Anyone else following `/actor` gets a Reject: it is the node's own machinery, nothing
    to read there."""
    me = await instance_actor(node)
    await record_follow(node, sender, actor_uri(node, me), activity["id"], "pending")
    await answer_follow(node, me, sender, accept=False)


async def delivery_failed(node: Node) -> None:
    """A pending subscription whose Follow could not be delivered for good becomes failed
    (the delivery's last error says why)."""
    rows = await node.db.fetch_all(
        "SELECT r.id, d.last_error FROM relays r JOIN deliveries d "
        "ON d.activity_uri = r.follow_id WHERE r.state = 'pending' AND d.state = 'failed'")
    for row in rows:
        await _set_state(node, row["id"], "failed", (row["last_error"] or "")[:300])
