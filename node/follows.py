"""Follow relationships, in both directions, between local and remote actors."""

from __future__ import annotations

from typing import Any

from activitypub.vocab import AS_CONTEXT
from node.actors import LocalActor, actor_uri
from node.context import Node
from node.db import new_id, now
from node.remote_actors import RemoteActor, resolve_handle
from outbox.publish import publish


def activity_uri(node: Node) -> str:
    return node.url(f"/activities/{new_id()}")


async def record_follow(
    node: Node, follower: str, followee: str, activity_id: str, state: str
) -> None:
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, :s, :t) ON CONFLICT (follower_uri, followee_uri) DO UPDATE SET "
        "activity_id = excluded.activity_id, state = excluded.state",
        {"f": follower, "e": followee, "a": activity_id, "s": state, "t": now()},
    )


async def follow_handle(node: Node, actor: LocalActor, handle: str) -> RemoteActor:
    """Follow a remote actor by its handle: WebFinger, signed fetch, then `Follow`."""
    remote = await resolve_handle(node, handle)
    me = actor_uri(node, actor)
    follow = {
        "@context": AS_CONTEXT, "id": activity_uri(node), "type": "Follow",
        "actor": me, "object": remote.uri, "to": [remote.uri],
    }
    await record_follow(node, me, remote.uri, follow["id"], "pending")
    await publish(node, actor, follow)
    return remote


async def unfollow(node: Node, actor: LocalActor, remote_uri: str) -> bool:
    me = actor_uri(node, actor)
    row = await node.db.fetch_one(
        "SELECT activity_id FROM follows WHERE follower_uri = :f AND followee_uri = :e",
        {"f": me, "e": remote_uri},
    )
    if row is None:
        return False
    await node.db.execute(
        "DELETE FROM follows WHERE follower_uri = :f AND followee_uri = :e",
        {"f": me, "e": remote_uri},
    )
    undo = {
        "@context": AS_CONTEXT, "id": activity_uri(node), "type": "Undo", "actor": me,
        "object": {"id": row["activity_id"], "type": "Follow", "actor": me, "object": remote_uri},
        "to": [remote_uri],
    }
    await publish(node, actor, undo)
    return True


async def answer_follow(
    node: Node, actor: LocalActor, follower_uri: str, accept: bool
) -> bool:
    """Accept or reject a follow request made to a local actor."""
    me = actor_uri(node, actor)
    row = await node.db.fetch_one(
        "SELECT activity_id FROM follows WHERE follower_uri = :f AND followee_uri = :e",
        {"f": follower_uri, "e": me},
    )
    if row is None:
        return False
    if accept:
        await node.db.execute(
            "UPDATE follows SET state = 'accepted' WHERE follower_uri = :f AND followee_uri = :e",
            {"f": follower_uri, "e": me},
        )
    else:
        await node.db.execute(
            "DELETE FROM follows WHERE follower_uri = :f AND followee_uri = :e",
            {"f": follower_uri, "e": me},
        )
    answer: dict[str, Any] = {
        "@context": AS_CONTEXT, "id": activity_uri(node),
        "type": "Accept" if accept else "Reject", "actor": me,
        "object": {"id": row["activity_id"], "type": "Follow", "actor": follower_uri,
                   "object": me},
        "to": [follower_uri],
    }
    await publish(node, actor, answer)
    return True


async def followers(node: Node, uri: str, state: str = "accepted") -> list[dict]:
    return await node.db.fetch_all(
        "SELECT f.follower_uri AS uri, f.state, f.created_at, r.username, r.host, r.name "
        "FROM follows f LEFT JOIN remote_actors r ON r.uri = f.follower_uri "
        "WHERE f.followee_uri = :u AND f.state = :s ORDER BY f.created_at DESC",
        {"u": uri, "s": state},
    )


async def following(node: Node, uri: str) -> list[dict]:
    return await node.db.fetch_all(
        "SELECT f.followee_uri AS uri, f.state, f.created_at, r.username, r.host, r.name "
        "FROM follows f LEFT JOIN remote_actors r ON r.uri = f.followee_uri "
        "WHERE f.follower_uri = :u ORDER BY f.created_at DESC",
        {"u": uri},
    )


async def is_following(node: Node, follower: str, followee: str) -> bool:
    return bool(await node.db.fetch_val(
        "SELECT 1 FROM follows WHERE follower_uri = :f AND followee_uri = :e "
        "AND state = 'accepted'",
        {"f": follower, "e": followee},
    ))
