"""Actor blocks: by the node's admins (the actor's activities are refused at the inbox) or by a
member (what that actor sends stays out of the member's sight)."""

from __future__ import annotations

import time

from node.context import Node
from node.db import now
from node.moderation.domains import ModerationError
from node.policy import CACHE_SECONDS

NODE_WIDE = "*"


def _check_uri(actor_uri: str) -> str:
    actor_uri = actor_uri.strip()
    if not actor_uri.startswith(("https://", "http://")) or len(actor_uri) > 2000:
        raise ModerationError("give the actor's address, for example https://other.example/users/x")
    return actor_uri


async def block_actor(node: Node, owner: str, actor_uri: str) -> str:
    actor_uri = _check_uri(actor_uri)
    if node.is_local(actor_uri) and owner == NODE_WIDE:
        raise ModerationError("local accounts are suspended, not blocked")
    await node.db.execute(
        "INSERT INTO actor_blocks (owner, actor_uri, created_at) VALUES (:o, :a, :t) "
        "ON CONFLICT (owner, actor_uri) DO NOTHING",
        {"o": owner, "a": actor_uri, "t": now()},
    )
    node._actor_blocks = None  # type: ignore[attr-defined]
    return actor_uri


async def unblock_actor(node: Node, owner: str, actor_uri: str) -> bool:
    found = await node.db.fetch_val(
        "SELECT 1 FROM actor_blocks WHERE owner = :o AND actor_uri = :a",
        {"o": owner, "a": actor_uri})
    await node.db.execute(
        "DELETE FROM actor_blocks WHERE owner = :o AND actor_uri = :a",
        {"o": owner, "a": actor_uri})
    node._actor_blocks = None  # type: ignore[attr-defined]
    return bool(found)


async def is_blocked_node_wide(node: Node, actor_uri: str) -> bool:
    cached = getattr(node, "_actor_blocks", None)
    if cached is None or time.monotonic() - cached[0] >= CACHE_SECONDS:
        rows = await node.db.fetch_all(
            "SELECT actor_uri FROM actor_blocks WHERE owner = :o", {"o": NODE_WIDE})
        cached = (time.monotonic(), frozenset(r["actor_uri"] for r in rows))
        node._actor_blocks = cached  # type: ignore[attr-defined]
    return actor_uri in cached[1]


async def blocked_by(node: Node, owner: str) -> list[str]:
    rows = await node.db.fetch_all(
        "SELECT actor_uri FROM actor_blocks WHERE owner = :o ORDER BY created_at", {"o": owner})
    return [r["actor_uri"] for r in rows]


async def hidden_from(node: Node, user_id: str | None) -> set[str]:
    """Actors whose posts, responses and messages a page must not show to this member: those the
    member blocked and those the node blocked. Pages of responses and messages filter on it."""
    owners = [NODE_WIDE] + ([user_id] if user_id else [])
    rows = await node.db.fetch_all(
        "SELECT actor_uri FROM actor_blocks WHERE owner IN (:a, :b)",
        {"a": owners[0], "b": owners[-1]})
    return {r["actor_uri"] for r in rows}
