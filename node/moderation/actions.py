"""What admins do about a report: remove a post (the removal federates), suspend an account."""

from __future__ import annotations

from node.accounts import sessions
from node.actors import by_uri
from node.context import Node
from node.db import now
from node.moderation.domains import ModerationError
from node.notes import delete_note
from node.objects import get_object, mark_deleted
from node.posts import publishing
from node.posts.queries import get_post_by_uri

# A post in one of these states is gone already (the posts domain never revives them).
REMOVED = ("withdrawn", "expired")


async def remove_post(node: Node, uri: str) -> str:
    """An offer or need of this node is withdrawn through the posts domain (its followers and
    responders get `Delete`); another note of this node is deleted by its author's actor; a
    post from elsewhere is hidden here (its own server decides for everyone else)."""
    post = await get_post_by_uri(node, uri)
    if post is not None:
        if post["status"] in REMOVED:
            raise ModerationError("no such post, or it was removed already")
        await node.db.execute(
            "UPDATE posts SET status = 'withdrawn', updated_at = :t WHERE id = :i",
            {"t": now(), "i": post["id"]})
        if post["remote"]:
            await mark_deleted(node, uri)
            return "hidden on this node"
        await publishing.deleted(node, {**post, "status": "withdrawn"})
        return "withdrawn, and a Delete was sent to those who had it"
    obj = await get_object(node, uri)
    if obj is None or obj["deleted"]:
        raise ModerationError("no such post, or it was removed already")
    if obj["local"]:
        author = await by_uri(node, obj["attributed_to"] or "")
        if author is None or not await delete_note(node, author, uri):
            raise ModerationError("the post's author is gone; nothing to federate")
        return "removed, and a Delete was sent to the author's followers"
    await mark_deleted(node, uri)
    return "hidden on this node"


async def suspend(node: Node, user_id: str, reason: str, by: str) -> None:
    row = await node.db.fetch_one("SELECT role FROM users WHERE id = :i", {"i": user_id})
    if row is None:
        raise ModerationError("no such account")
    if row["role"] == "admin":
        raise ModerationError("an admin account cannot be suspended; change its role first")
    await node.db.execute(
        "INSERT INTO suspensions (user_id, reason, created_by, created_at) "
        "VALUES (:u, :r, :b, :t) ON CONFLICT (user_id) DO NOTHING",
        {"u": user_id, "r": reason.strip()[:500], "b": by, "t": now()})
    # Signed out on every device now, not only at their next request (suspension.py).
    await sessions.end_all(node, user_id)


async def unsuspend(node: Node, user_id: str) -> None:
    await node.db.execute("DELETE FROM suspensions WHERE user_id = :u", {"u": user_id})


async def is_suspended(node: Node, user_id: str) -> bool:
    return bool(await node.db.fetch_val(
        "SELECT 1 FROM suspensions WHERE user_id = :u", {"u": user_id}))
