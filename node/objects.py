"""Objects (notes, posts) the node knows: its own and those received from peers.

Every object is stored with its typed model (activitypub/model.py); pages read that model,
never the payload. Storing follows the ownership rule: a row belongs to its author for good —
another author's object with the same id is refused, and a deleted object stays deleted.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from activitypub.html import sanitize_html
from activitypub.model import InvalidObject, RemoteObject, from_json
from node.context import Node
from node.db import GroupCommit, dumps, now
from node.generations import held

__all__ = ["InvalidObject", "get_object", "load_model", "mark_deleted", "record_tombstone",
           "sanitize_html", "store_model", "store_object"]


def _timestamp(value: str | None) -> float:
    if value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now()


async def get_object(node: Node, uri: str) -> dict[str, Any] | None:
    return await node.db.fetch_one("SELECT * FROM objects WHERE uri = :u", {"u": uri})


def load_model(row: dict[str, Any]) -> RemoteObject | None:
    """The model of a stored row; None for a tombstone or a row that cannot be shown."""
    if row.get("deleted"):
        return None
    if row.get("model"):
        return RemoteObject.from_dict(json.loads(row["model"]))
    try:  # a row stored before models existed
        return from_json(json.loads(row["payload"]))
    except (InvalidObject, ValueError):
        return None


async def store_object(node: Node, obj: dict[str, Any], local: bool) -> bool:
    """Store one of our own objects (the payload is what we serve) or a remote one (converted
    first; InvalidObject when it cannot be kept). False when the ownership rule refused it."""
    model = from_json(obj)
    # A remote object is kept as its model: what was received is not served again.
    return await store_model(node, model, local, obj if local else None)


_COLUMNS = ("uri", "type", "attributed_to", "local", "in_reply_to", "payload", "model",
            "public_audience", "deleted", "published", "updated")
# The WHERE of the upsert is the ownership rule: same author, same side (ours or remote), never
# a row that was deleted.
_UPSERT = (
    "ON CONFLICT (uri) DO UPDATE SET type = excluded.type, payload = excluded.payload, "
    "model = excluded.model, public_audience = excluded.public_audience, "
    "in_reply_to = excluded.in_reply_to, updated = excluded.updated "
    "WHERE objects.attributed_to = excluded.attributed_to "
    "AND objects.local = excluded.local AND objects.deleted = 0 RETURNING uri")


async def store_model(node: Node, model: RemoteObject, local: bool,
                      payload: dict[str, Any] | None = None) -> bool:
    """Store an object by the ownership rule; False when the rule refused it."""
    model_text = dumps(model.to_dict())
    row = (model.id, model.type, model.author, int(local), model.in_reply_to,
           dumps(payload) if payload else model_text, model_text, int(model.public), 0,
           _timestamp(model.published), _timestamp(model.updated) if model.updated else None)
    stored = None
    if not node.db.in_transaction():  # a batch runs outside the caller's transaction
        # Objects arriving together (the inbox under load) share one statement and one commit.
        kept = held(node, "object_upserts")
        batch = kept.get("batch") or kept.setdefault(
            "batch", GroupCommit(lambda rows: _upsert(node, rows)))
        # None: the same object twice in one batch, and this one goes after it.
        stored = await batch(model.id, row)
    if stored is None:
        stored = (await _upsert(node, {model.id: row}))[model.id]
    return stored


async def _upsert(node: Node, rows: dict[str, tuple[Any, ...]]) -> dict[str, bool]:
    """{uri: True} for each row stored, {uri: False} for each the ownership rule refused."""
    values: dict[str, Any] = {}
    tuples = []
    for n, row in enumerate(rows.values()):
        names = [f"c{n}_{i}" for i in range(len(_COLUMNS))]
        values.update(zip(names, row, strict=True))
        tuples.append(f"({', '.join(':' + name for name in names)})")
    stored = await node.db.fetch_all(
        f"INSERT INTO objects ({', '.join(_COLUMNS)}) VALUES {', '.join(tuples)} {_UPSERT}",
        values)
    kept = {r["uri"] for r in stored}
    return {uri: uri in kept for uri in rows}


async def mark_deleted(node: Node, uri: str) -> None:
    await node.db.execute(
        "UPDATE objects SET deleted = 1, payload = :p, model = NULL, public_audience = 0, "
        "updated = :t WHERE uri = :u",
        {"u": uri, "t": now(), "p": json.dumps({"id": uri, "type": "Tombstone"})},
    )


async def record_tombstone(node: Node, uri: str, author: str) -> None:
    """A Delete that arrived before its object: remember it, so that a late Create or an
    Announce cannot bring the object back (Mastodon's `delete_arrived_first?`)."""
    stamp = now()
    await node.db.execute(
        "INSERT INTO objects (uri, type, attributed_to, local, payload, deleted, published, "
        "updated) VALUES (:u, 'Tombstone', :a, 0, :p, 1, :t, :t) ON CONFLICT (uri) DO NOTHING",
        {"u": uri, "a": author, "p": json.dumps({"id": uri, "type": "Tombstone"}), "t": stamp},
    )
