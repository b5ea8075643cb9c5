"""Objects (notes, posts) the node knows: its own and those received from peers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import nh3

from activitypub.vocab import id_of, types_of
from node.context import Node
from node.db import dumps, now

# What remote HTML may keep: what Mastodon renders, nothing that runs or restyles the page.
ALLOWED_TAGS = {"p", "br", "a", "span", "strong", "em", "b", "i", "ul", "ol", "li",
                "blockquote", "code", "pre", "h1", "h2", "h3", "h4", "del", "u"}
ALLOWED_ATTRIBUTES = {"a": {"href", "class"}, "span": {"class"}}


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https"},
        link_rel="nofollow noopener noreferrer",
    )


def sanitize_object(obj: dict[str, Any]) -> dict[str, Any]:
    clean = dict(obj)
    if isinstance(clean.get("content"), str):
        clean["content"] = sanitize_html(clean["content"])
    if isinstance(clean.get("contentMap"), dict):
        clean["contentMap"] = {
            k: sanitize_html(v) for k, v in clean["contentMap"].items() if isinstance(v, str)
        }
    for text_field in ("name", "summary"):
        if isinstance(clean.get(text_field), str):
            clean[text_field] = nh3.clean(clean[text_field], tags=set())
    return clean


def _timestamp(value: Any) -> float:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now()


async def get_object(node: Node, uri: str) -> dict[str, Any] | None:
    return await node.db.fetch_one("SELECT * FROM objects WHERE uri = :u", {"u": uri})


async def store_object(node: Node, obj: dict[str, Any], local: bool) -> bool:
    """Insert or replace an object; returns False when nothing was stored."""
    uri = obj.get("id")
    if not isinstance(uri, str):
        return False
    clean = obj if local else sanitize_object(obj)
    kind = sorted(types_of(obj))[0] if types_of(obj) else "Object"
    values = {
        "u": uri, "t": kind, "a": id_of(obj.get("attributedTo")), "l": int(local),
        "r": id_of(obj.get("inReplyTo")), "p": dumps(clean),
        "pub": _timestamp(obj.get("published")),
        "upd": _timestamp(obj["updated"]) if obj.get("updated") else None,
    }
    await node.db.execute(
        "INSERT INTO objects (uri, type, attributed_to, local, in_reply_to, payload, deleted, "
        "published, updated) VALUES (:u, :t, :a, :l, :r, :p, 0, :pub, :upd) "
        "ON CONFLICT (uri) DO UPDATE SET type = excluded.type, payload = excluded.payload, "
        "in_reply_to = excluded.in_reply_to, updated = excluded.updated, deleted = 0",
        values,
    )
    return True


async def mark_deleted(node: Node, uri: str) -> None:
    await node.db.execute(
        "UPDATE objects SET deleted = 1, payload = :p, updated = :t WHERE uri = :u",
        {"u": uri, "t": now(), "p": json.dumps({"id": uri, "type": "Tombstone"})},
    )
