"""Objects as pages show them: the typed model, whether it is ours, and who wrote it by name.

Every list of objects on a page (home, hashtags, profiles) goes through `shown()`, so that no
page reads a payload and no author appears as a raw URL."""

from __future__ import annotations

from dataclasses import dataclass

from activitypub.model import RemoteObject
from activitypub.origin import host_label
from node.context import Node
from node.objects import load_model


@dataclass(frozen=True)
class Author:
    name: str
    handle: str
    link: str          # http(s): a local profile or the remote actor's own page
    local: bool


@dataclass(frozen=True)
class ShownObject:
    model: RemoteObject
    local: bool
    author: Author


async def author_of(node: Node, uri: str) -> Author:
    if node.is_local(uri):
        row = await node.db.fetch_one(
            "SELECT kind, username, name FROM actors WHERE username = :u",
            {"u": uri.rstrip("/").rsplit("/", 1)[-1]})
        if row is not None:
            handle = f"@{row['username']}@{node.settings.host}"
            return Author(row["name"] or handle, handle, uri, True)
        return Author(node.settings.host, "", uri, True)
    row = await node.db.fetch_one(
        "SELECT name, username, host, url FROM remote_actors WHERE uri = :u", {"u": uri})
    if row is None:
        return Author(host_label(uri), "", uri, False)
    handle = f"@{row['username']}@{row['host']}" if row["username"] else row["host"]
    return Author(row["name"] or handle, handle, row["url"] or uri, False)


async def shown(node: Node, rows: list[dict]) -> list[ShownObject]:
    """Rows of `objects` (with payload, model, local, deleted) as pages show them; what cannot
    be shown (tombstones, unreadable rows) is left out."""
    authors: dict[str, Author] = {}
    out = []
    for row in rows:
        model = load_model(row)
        if model is None:
            continue
        if model.author not in authors:
            authors[model.author] = await author_of(node, model.author)
        out.append(ShownObject(model, bool(row["local"]), authors[model.author]))
    return out
