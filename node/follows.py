"""Follow relationships, in both directions, between local and remote actors."""

from __future__ import annotations

from typing import Any

from activitypub.discovery import alternate_actor_link
from activitypub.origin import is_http_url
from activitypub.transport import ACCEPT, FetchError
from activitypub.vocab import ACTOR_TYPES, AS_CONTEXT, types_of
from activitypub.webfinger import HandleError, parse_handle
from node.actors import LocalActor, actor_uri, instance_actor, signing_key
from node.context import Node
from node.db import new_id, now
from node.i18n import _
from node.remote_actors import RemoteActor, fetch_actor, parse_actor, resolve_handle, store_actor
from outbox.publish import publish

# Asked of a profile link: the actor itself where the server negotiates, else its web page.
PROFILE_ACCEPT = f"{ACCEPT}, text/html;q=0.5"


class LocalTarget(ValueError):
    """The handle or link names an actor of this very node."""


def why_not_followed(exc: Exception) -> str:
    """What a person reads when a follow cannot be made, in their language (the exception's
    own text is for the log: it is in English and names internals)."""
    if isinstance(exc, LocalTarget):
        return _("This organisation is on this node: its posts are already in the list.")
    if isinstance(exc, HandleError):
        return _("Write a handle such as @food@other.example, or paste the link of the "
                 "organisation's profile page.")
    return _("No organisation answered at this address. Check the handle or the link, or try "
             "again later.")


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


async def resolve_profile_link(node: Node, url: str) -> RemoteActor:
    """The actor a profile link names: the link may be the actor's id (or a page of its server
    that answers the actor's JSON), or a web page that announces the actor with a
    `<link rel="alternate" type="application/activity+json">`; that actor is then fetched from
    its own id, so the page only points at it."""
    if not is_http_url(url):
        raise FetchError(f"not an http(s) link: {url!r}")
    if node.is_local(url):
        raise LocalTarget(url)
    key = signing_key(node, await instance_actor(node))
    resp = await node.transport.request("GET", url, key=key, headers={"Accept": PROFILE_ACCEPT})
    if resp.status >= 400:
        raise FetchError(f"{url} answered HTTP {resp.status}", resp.status)
    kind = resp.headers.get("content-type", "").lower()
    if "json" in kind:
        doc = resp.json()
        if not isinstance(doc, dict) or not types_of(doc) & ACTOR_TYPES:
            raise FetchError(f"{url} is not an actor")
        # Kept as fetched from where the answer came from (after redirects): same origin only.
        return await store_actor(node, parse_actor(doc, resp.url))
    actor_link = alternate_actor_link(resp.body.decode("utf-8", "replace"), resp.url)
    if actor_link is None:
        raise FetchError(f"{url} announces no ActivityPub actor")
    if node.is_local(actor_link):
        raise LocalTarget(actor_link)
    return await fetch_actor(node, actor_link)


async def resolve_target(node: Node, target: str) -> RemoteActor:
    """A handle (`@name@host`) or a profile link (`https://...`) -> the remote actor.
    HandleError for text that is neither, LocalTarget for an actor of this node, FetchError
    when nothing usable answers."""
    target = target.strip()
    if target.lower().startswith(("http://", "https://")):
        remote = await resolve_profile_link(node, target)
    else:
        handle = target if target.startswith("@") else f"@{target}"
        if parse_handle(handle)[1] == node.settings.host.lower():
            raise LocalTarget(handle)
        remote = await resolve_handle(node, handle)
    if node.is_local(remote.uri):
        raise LocalTarget(remote.uri)
    return remote


async def follow(node: Node, actor: LocalActor, target: str) -> tuple[RemoteActor, bool]:
    """Follow a remote actor by handle or profile link on behalf of a local actor (a member's
    Person, or an organisation's Group from /admin). Returns the actor and whether a Follow
    was sent: none when the follow is already accepted (following again changes nothing)."""
    remote = await resolve_target(node, target)
    if await is_following(node, actor_uri(node, actor), remote.uri):
        return remote, False
    await send_follow(node, actor, remote)
    return remote, True


async def follow_handle(node: Node, actor: LocalActor, handle: str) -> RemoteActor:
    """Follow a remote actor by its handle: WebFinger, signed fetch, then `Follow`."""
    remote = await resolve_handle(node, handle)
    await send_follow(node, actor, remote)
    return remote


async def send_follow(node: Node, actor: LocalActor, remote: RemoteActor) -> None:
    me = actor_uri(node, actor)
    follow = {
        "@context": AS_CONTEXT, "id": activity_uri(node), "type": "Follow",
        "actor": me, "object": remote.uri, "to": [remote.uri],
    }
    await record_follow(node, me, remote.uri, follow["id"], "pending")
    await publish(node, actor, follow)


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
