"""Where a remote offer or need came from, and the one rule that decides whether it came by a
way this node accepts.

Every path that can bring another server's post passes a `Provenance` down to
node/posts/incoming.py `store_remote_post`, which asks `admitted()` before anything is stored:

- `create`: its author's server delivered it. Kept when someone here follows its organisation
  or its author, or when it publicly replies to one of our objects. A Create from an actor
  nobody here follows, about nothing of ours, is unsolicited: it never becomes a post (spam).
- `announce`: an actor someone here follows (a group, a relay the node subscribed to) passed
  it on; the inbox fetched it from its origin unless it is the announcer's own
  (inbox/handlers/announce.py). Kept when public, or when the announcer is its organisation.
- `backfill`: read from the outbox of an actor followed here (node/backfill.py).
- `fetch`: a member looked its link up (node/routes/network.py). Kept when public.
- `update`: its author changed it (inbox/handlers/update.py): only a post already here.

What was admitted is stored as `posts.via`; `listed_clause()` is the lists' side of the same
rule: a post that came by a follow is listed while the follow lasts, the others on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from activitypub.model import RemoteObject
from node.context import Node


class Arrival(StrEnum):
    CREATE = "create"
    ANNOUNCE = "announce"
    BACKFILL = "backfill"
    FETCH = "fetch"
    UPDATE = "update"


class Via(StrEnum):
    """Why a remote post is here (the `posts.via` column)."""

    FOLLOW = "follow"      # its organisation or author is followed here
    ANNOUNCE = "announce"  # passed on by a group or relay followed here
    REPLY = "reply"        # a public reply to one of our objects
    FETCH = "fetch"        # a member looked it up


# Listed without a follow of their own: they were asked for by following their announcer,
# by answering us, or by a member's look-up.
LISTED_ON_THEIR_OWN = (Via.ANNOUNCE, Via.REPLY, Via.FETCH)


@dataclass(frozen=True)
class Provenance:
    arrival: Arrival
    by: str  # the signer, the announcer, the followed actor or the member's actor

    @classmethod
    def create(cls, signer: str) -> Provenance:
        return cls(Arrival.CREATE, signer)

    @classmethod
    def announce(cls, announcer: str) -> Provenance:
        return cls(Arrival.ANNOUNCE, announcer)

    @classmethod
    def backfill(cls, followed: str) -> Provenance:
        return cls(Arrival.BACKFILL, followed)

    @classmethod
    def fetch(cls, member_actor: str) -> Provenance:
        return cls(Arrival.FETCH, member_actor)

    @classmethod
    def update(cls, signer: str) -> Provenance:
        return cls(Arrival.UPDATE, signer)

    @property
    def tells_members(self) -> bool:
        """Posts read back from an outbox are old news: members are told of the others."""
        return self.arrival is not Arrival.BACKFILL


async def followed_here(node: Node, actor: str | None) -> bool:
    """Someone of this node (a member, an organisation, the instance actor) follows `actor`."""
    if not actor:
        return False
    rows = await node.db.fetch_all(
        "SELECT follower_uri FROM follows WHERE followee_uri = :a AND state = 'accepted'",
        {"a": actor})
    return any(node.is_local(r["follower_uri"]) for r in rows)


async def _replies_to_ours(node: Node, model: RemoteObject) -> bool:
    target = model.in_reply_to
    if not target or not node.is_local(target):
        return False
    return bool(await node.db.fetch_val(
        "SELECT 1 FROM objects WHERE uri = :u AND local = 1 AND deleted = 0", {"u": target}))


async def admitted(node: Node, provenance: Provenance, post: dict[str, Any],
                   model: RemoteObject, existing: dict[str, Any] | None) -> Via | None:
    """Why this post may be kept, or None when it came by no way this node accepts. `post` is
    the converted fields (node/posts/wire.py `from_note`); `existing` the stored row if any."""
    arrival, by = provenance.arrival, provenance.by
    if arrival is Arrival.UPDATE:
        return Via(existing["via"] or Via.FOLLOW) if existing is not None else None
    followed_post = (await followed_here(node, post["org_uri"])
                     or await followed_here(node, post["attributed_to"]))
    if arrival is Arrival.CREATE:
        if followed_post:
            return Via.FOLLOW
        return Via.REPLY if model.public and await _replies_to_ours(node, model) else None
    if arrival is Arrival.BACKFILL:
        ours = by in (post["org_uri"], post["attributed_to"])
        return Via.FOLLOW if ours and followed_post else None
    if arrival is Arrival.ANNOUNCE:
        if not await followed_here(node, by):
            return None
        if by in (post["org_uri"], post["attributed_to"]):
            return Via.FOLLOW  # FEP-1b12: a followed group passing on its own members' posts
        return Via.ANNOUNCE if model.public else None
    if arrival is Arrival.FETCH:
        return Via.FETCH if model.public and node.is_local(by) else None
    return None


def listed_clause() -> str:
    """SQL over `posts`: the remote posts the lists show (local ones always)."""
    on_their_own = ", ".join(f"'{v.value}'" for v in LISTED_ON_THEIR_OWN)
    return (f"(remote = 0 OR via IN ({on_their_own}) OR EXISTS (SELECT 1 FROM follows f "
            "WHERE f.state = 'accepted' AND f.followee_uri IN (posts.org_uri, "
            "posts.attributed_to)))")
