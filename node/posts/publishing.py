"""A local post leaves the node: Create / Update / Delete through outbox.publish(), from the
member's Person actor (or the Group for proxied needs), and the Group's FEP-1b12 Announce so
that whoever follows the organisation sees it."""

from __future__ import annotations

import logging
from typing import Any

from activitypub.transport import FetchError
from node.actors import LocalActor, by_uri
from node.context import Node
from node.db import new_id
from node.objects import mark_deleted, store_object
from node.posts import wire
from node.remote_actors import get_actor
from outbox.addressing import follower_inboxes
from outbox.publish import publish

log = logging.getLogger(__name__)


def activity_id(node: Node) -> str:
    return node.url(f"/activities/{new_id()}")


def addressing(post: dict[str, Any]) -> wire.Addressing:
    return wire.Addressing(attributed_to=post["attributed_to"], org_uri=post["org_uri"])


async def actors_of(node: Node, post: dict[str, Any]) -> tuple[LocalActor, LocalActor]:
    """(author, organisation) of a local post; the author is the Group for proxied needs."""
    org = await by_uri(node, post["org_uri"])
    author = await by_uri(node, post["attributed_to"])
    if org is None:
        raise LookupError(f"the organisation {post['org_uri']} of a post is gone")
    return author or org, org


def note_of(node: Node, post: dict[str, Any]) -> dict[str, Any]:
    return wire.to_note(post, addressing(post), node.settings.base_url)


async def _responder_inboxes(node: Node, post: dict[str, Any]) -> list[str]:
    """Remote responders hear about changes even if they do not follow the organisation."""
    rows = await node.db.fetch_all(
        "SELECT DISTINCT responder_uri FROM responses WHERE post_id = :p "
        "AND responder_user_id IS NULL AND status != 'declined'", {"p": post["id"]})
    inboxes = []
    for row in rows:
        if node.is_local(row["responder_uri"]):
            continue
        try:
            inboxes.append((await get_actor(node, row["responder_uri"])).delivery_inbox)
        except FetchError as exc:
            log.warning("cannot reach responder %s: %s", row["responder_uri"], exc)
    return inboxes


async def _send(node: Node, post: dict[str, Any], activity: dict[str, Any],
                note: dict[str, Any] | None) -> None:
    author, org = await actors_of(node, post)
    extra = await _responder_inboxes(node, post)
    if author.id != org.id:
        # The Group's followers are not the author's: deliver to them explicitly.
        extra += await follower_inboxes(node, post["org_uri"])
    await publish(node, author, activity, extra_inboxes=extra)
    if author.id != org.id and note is not None:
        await publish(node, org, wire.announce(activity_id(node), post["org_uri"], note))


async def published(node: Node, post: dict[str, Any]) -> None:
    """Announce a new post to the network (nothing leaves for a local-only post)."""
    if post["visibility"] == "local":
        return
    note = note_of(node, post)
    await store_object(node, note, local=True)
    activity = wire.wrap("Create", activity_id(node), post["attributed_to"], note,
                         node.settings.base_url)
    await _send(node, post, activity, note)


async def updated(node: Node, post: dict[str, Any]) -> None:
    """An edit or a status change (in progress, fulfilled) travels as an Update."""
    if post["visibility"] == "local":
        return
    note = note_of(node, post)
    await store_object(node, note, local=True)
    activity = wire.wrap("Update", activity_id(node), post["attributed_to"], note,
                         node.settings.base_url)
    await _send(node, post, activity, note)


async def deleted(node: Node, post: dict[str, Any]) -> None:
    """Withdrawn or expired: a Delete with a Tombstone."""
    if post["visibility"] == "local":
        return
    await mark_deleted(node, post["uri"])
    activity = wire.tombstone_delete(activity_id(node), post["attributed_to"], post["uri"],
                                     addressing(post))
    await _send(node, post, activity, None)
