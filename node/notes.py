"""Notes an organisation publishes to its followers (announcements; offers and needs build on
the same path)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from activitypub.vocab import AS_CONTEXT, PUBLIC
from node.actors import LocalActor, actor_uri
from node.context import Node
from node.db import new_id
from node.objects import mark_deleted, store_object
from outbox.publish import publish


def iso(ts: datetime | None = None) -> str:
    return (ts or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")


async def publish_note(node: Node, actor: LocalActor, text: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        raise ValueError("a note cannot be empty")
    if len(text) > 5000:
        raise ValueError("a note holds at most 5000 characters")
    author = actor_uri(node, actor)
    uri = node.url(f"/objects/{new_id()}")
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n") if p.strip())
    note = {
        "id": uri, "type": "Note", "attributedTo": author, "content": paragraphs,
        "published": iso(), "url": uri, "to": [PUBLIC], "cc": [f"{author}/followers"],
    }
    await store_object(node, note, local=True)
    create = {
        "@context": AS_CONTEXT, "id": f"{uri}/activity", "type": "Create", "actor": author,
        "published": note["published"], "to": note["to"], "cc": note["cc"], "object": note,
    }
    await publish(node, actor, create)
    return note


async def delete_note(node: Node, actor: LocalActor, uri: str) -> bool:
    author = actor_uri(node, actor)
    row = await node.db.fetch_one(
        "SELECT uri FROM objects WHERE uri = :u AND attributed_to = :a AND local = 1 "
        "AND deleted = 0", {"u": uri, "a": author})
    if row is None:
        return False
    await mark_deleted(node, uri)
    delete = {
        "@context": AS_CONTEXT, "id": node.url(f"/activities/{new_id()}"), "type": "Delete",
        "actor": author, "object": {"id": uri, "type": "Tombstone"},
        "to": [PUBLIC], "cc": [f"{author}/followers"],
    }
    await publish(node, actor, delete)
    return True
