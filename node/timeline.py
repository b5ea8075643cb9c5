"""Objects as pages show them: the typed model, whether it is ours, and who wrote it by name.

Every list of objects on a page (home, hashtags, profiles) goes through `shown()`, so that no
page reads a payload and no author appears as a raw URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from activitypub.model import RemoteObject
from activitypub.origin import host_label
from activitypub.transport import FetchError
from node.context import Node
from node.objects import load_model
from node.remote_actors import get_actor

# An author a page needs but this node never saw is fetched, a few seconds at most for a whole
# page; one whose server did not answer is not asked again for a while.
FETCH_DEADLINE = 3.0
FETCH_AT_ONCE = 10
RETRY_UNKNOWN = 600.0
_unreachable: dict[str, float] = {}


@dataclass(frozen=True)
class Author:
    name: str
    handle: str
    link: str          # http(s): a local profile or the remote actor's own page
    local: bool
    # A local member's picture. Remote pictures are not shown: loading them would tell the
    # remote server who reads this page.
    icon: str | None = None


@dataclass(frozen=True)
class ShownObject:
    model: RemoteObject
    local: bool
    author: Author


def _handle_from_uri(uri: str) -> str:
    """@name@host from the last part of an actor's URI, when nothing better is known: never a
    bare host."""
    last = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1].lstrip("@") or "?"
    return f"@{last}@{host_label(uri)}"


async def author_of(node: Node, uri: str, fetch: bool = False) -> Author:
    """An actor by name: a local member's display name (and picture) or an organisation's
    name, a remote actor's `name` (fetched first when `fetch` and never seen here), else
    their handle."""
    if node.is_local(uri):
        row = await node.db.fetch_one(
            "SELECT kind, username, name, icon_url FROM actors WHERE username = :u",
            {"u": uri.rstrip("/").rsplit("/", 1)[-1]})
        if row is not None:
            handle = f"@{row['username']}@{node.settings.host}"
            return Author(row["name"] or handle, handle, uri, True, row["icon_url"])
        return Author(_handle_from_uri(uri), "", uri, True)
    if fetch:
        await learn_actors(node, [uri])
    row = await node.db.fetch_one(
        "SELECT name, username, host, url FROM remote_actors WHERE uri = :u", {"u": uri})
    if row is None:
        return Author(_handle_from_uri(uri), "", uri, False)
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


async def learn_actors(node: Node, uris: Iterable[str]) -> None:
    """Fetch the remote actors among `uris` that this node has never seen (FETCH_AT_ONCE at a
    time, FETCH_DEADLINE seconds in all), so that pages can name them."""
    stamp = time.monotonic()
    wanted = [u for u in dict.fromkeys(uris) if not node.is_local(u)
              and stamp - _unreachable.get(u, -RETRY_UNKNOWN) >= RETRY_UNKNOWN]
    if not wanted:
        return
    names = {f"u{i}": u for i, u in enumerate(wanted)}
    known = {r["uri"] for r in await node.db.fetch_all(
        f"SELECT uri FROM remote_actors WHERE uri IN ({', '.join(':' + n for n in names)})",
        names)}
    missing = [u for u in wanted if u not in known][:FETCH_AT_ONCE]

    async def one(uri: str) -> None:
        try:
            await get_actor(node, uri)
        except (FetchError, ValueError):
            _unreachable[uri] = time.monotonic()

    try:
        async with asyncio.timeout(FETCH_DEADLINE):
            await asyncio.gather(*(one(u) for u in missing))
    except TimeoutError:
        for uri in missing:
            _unreachable.setdefault(uri, time.monotonic())


@dataclass(frozen=True)
class Byline:
    """Who a post is by, as the list and the post page show it."""

    author: Author
    organisation: Author | None  # None when the organisation wrote it itself
    on_behalf: bool              # a need an organisation of ours posted for someone


async def bylines(node: Node, posts: list[dict]) -> dict[str, Byline]:
    """The byline of each post (rows of `posts`), by post id; authors never seen before are
    fetched first (see `learn_actors`)."""
    uris = [u for p in posts for u in (p["attributed_to"], p["org_uri"]) if u]
    await learn_actors(node, uris)
    authors = {u: await author_of(node, u) for u in dict.fromkeys(uris)}
    out = {}
    for post in posts:
        author = authors[post["attributed_to"]]
        own = post["attributed_to"] == post["org_uri"] or not post["org_uri"]
        out[post["id"]] = Byline(author, None if own else authors[post["org_uri"]],
                                 bool(post.get("proxied")) and not post.get("remote"))
    return out
