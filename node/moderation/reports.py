"""Reports: a member reports a post or an actor; a remote server reports with `Flag`; admins
work through the queue and may forward a report to the reported actor's server as `Flag`.

As Mastodon does, a forwarded `Flag` is sent by the instance actor, so that the member who
reported stays anonymous to the other server."""

from __future__ import annotations

from typing import Any

import nh3

from activitypub.transport import FetchError
from activitypub.vocab import AS_CONTEXT
from node.actors import actor_uri, by_uri, instance_actor
from node.context import Node
from node.db import new_id, now
from node.moderation.domains import ModerationError
from node.objects import get_object
from node.posts.queries import get_post_by_uri
from node.remote_actors import cached_actor, get_actor
from outbox.publish import publish

MAX_REASON = 1000


def _clean_reason(reason: str) -> str:
    # Stored as text, shown escaped; markup from a remote server is dropped, not kept.
    return nh3.clean(reason or "", tags=set()).strip()[:MAX_REASON]


async def _target(node: Node, uri: str) -> tuple[str | None, str | None]:
    """(actor, object) a URI points at, if the node knows it."""
    post = await get_post_by_uri(node, uri)
    if post is not None:
        return post["attributed_to"], uri
    obj = await get_object(node, uri)
    if obj is not None:
        return obj["attributed_to"], uri
    if await by_uri(node, uri) is not None or await cached_actor(node, uri) is not None:
        return uri, None
    return None, None


async def file_report(node: Node, user_id: str, target_uri: str, reason: str) -> str:
    """A member's report of a post or an actor; returns the report's id."""
    target_uri = target_uri.strip()
    reason = _clean_reason(reason)
    if not reason:
        raise ModerationError("say in a few words what is wrong, so that moderators can act")
    actor, obj = await _target(node, target_uri)
    if actor is None and obj is None:
        raise ModerationError("this node knows no post or account at that address")
    report_id = new_id()
    await node.db.execute(
        "INSERT INTO reports (id, reporter_user_id, target_actor_uri, target_object_uri, reason, "
        "status, created_at) VALUES (:i, :u, :a, :o, :r, 'open', :t)",
        {"i": report_id, "u": user_id, "a": actor, "o": obj, "r": reason, "t": now()},
    )
    return report_id


async def receive_flag(node: Node, activity: dict[str, Any], reporter: str,
                       targets: list[str]) -> str | None:
    """A remote server's `Flag`: one report about the first local actor or post it names.
    Returns the report id, or None when it names nothing of this node."""
    actor: str | None = None
    obj: str | None = None
    for uri in targets:
        if not node.is_local(uri):
            continue
        found_actor, found_obj = await _target(node, uri)
        if found_obj and obj is None:
            obj, actor = found_obj, actor or found_actor
        elif found_actor and actor is None:
            actor = found_actor
    if actor is None and obj is None:
        return None
    content = activity.get("content")
    report_id = new_id()
    inserted = await node.db.fetch_val(
        "INSERT INTO reports (id, reporter_actor_uri, target_actor_uri, target_object_uri, "
        "reason, status, activity_id, created_at) VALUES (:i, :rep, :a, :o, :r, 'open', :act, :t)"
        " ON CONFLICT (activity_id) DO NOTHING RETURNING id",
        {"i": report_id, "rep": reporter, "a": actor, "o": obj, "act": activity["id"],
         "r": _clean_reason(content if isinstance(content, str) else ""), "t": now()},
    )
    return inserted


async def open_reports(node: Node) -> list[dict]:
    return await node.db.fetch_all(
        "SELECT * FROM reports WHERE status = 'open' ORDER BY created_at")


async def get_report(node: Node, report_id: str) -> dict:
    row = await node.db.fetch_one("SELECT * FROM reports WHERE id = :i", {"i": report_id})
    if row is None:
        raise ModerationError("no such report")
    return row


async def resolve(node: Node, report_id: str, by: str) -> None:
    await get_report(node, report_id)
    await node.db.execute(
        "UPDATE reports SET status = 'resolved', resolved_by = :b, resolved_at = :t "
        "WHERE id = :i", {"b": by, "t": now(), "i": report_id})


async def forward(node: Node, report_id: str) -> str:
    """Send the report to the reported actor's server as `Flag`; returns the Flag's id."""
    report = await get_report(node, report_id)
    target = report["target_actor_uri"]
    if not target or node.is_local(target):
        raise ModerationError("only reports about accounts of other servers can be forwarded")
    try:
        remote = await get_actor(node, target)
    except FetchError as exc:
        raise ModerationError(f"the reported account cannot be reached: {exc}") from exc
    instance = await instance_actor(node)
    objects = [target] + ([report["target_object_uri"]] if report["target_object_uri"] else [])
    flag = {
        "@context": AS_CONTEXT, "id": node.url(f"/activities/{new_id()}"), "type": "Flag",
        "actor": actor_uri(node, instance), "content": report["reason"], "object": objects,
        "to": [target],
    }
    await publish(node, instance, flag, extra_inboxes=[remote.delivery_inbox])
    await node.db.execute("UPDATE reports SET forwarded_at = :t WHERE id = :i",
                          {"t": now(), "i": report_id})
    return flag["id"]
