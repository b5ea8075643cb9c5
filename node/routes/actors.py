"""Actor documents and their collections; the per-actor and shared inboxes."""

from __future__ import annotations

from typing import NoReturn

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from activitypub.collections import (
    PAGE_SIZE,
    Cursor,
    collection,
    collection_page,
    cursor_collection,
    cursor_page,
)
from inbox.receiver import receive
from node import errors, follows
from node.actors import (
    LocalActor,
    actor_uri,
    by_username,
    gone_for_good,
    instance_actor,
    to_document,
)
from node.context import Node
from node.generations import held, keep, watched_cache
from node.negotiation import activity_response, encode, wants_activity_json
from node.posts import queries
from node.posts.cards import Card, cards_of_objects
from node.posts.cards import cards as post_cards
from node.routes.signed_fetch import signed_fetch
from node.timeline import shown
from node.web_support import node_of, render


async def _actor(request: Request) -> LocalActor | None:
    node = node_of(request)
    if request.url.path.startswith("/actor"):
        return await instance_actor(node)
    kind = "Group" if request.url.path.startswith("/groups/") else "Person"
    actor = await by_username(node, request.path_params["username"], kind)
    if actor is not None and await gone_for_good(node, actor):
        raise errors.PageError(410)
    return actor


def _not_found() -> NoReturn:
    errors.not_found()


async def actor_view(request: Request) -> Response:
    actor = await _actor(request)
    if actor is None:
        return _not_found()
    node = node_of(request)
    if wants_activity_json(request) or actor.kind == "Application":
        return activity_response(to_document(node, actor))
    uri = actor_uri(node, actor)
    posts = await node.db.fetch_all(
        "SELECT payload, model, local, deleted FROM objects WHERE attributed_to = :a "
        "AND deleted = 0 AND public_audience = 1 ORDER BY published DESC LIMIT 20", {"a": uri})
    # An organisation's open offers and needs are its members' posts in its name; below them,
    # what it published itself that they do not already show (its notes).
    open_cards = await post_cards(node, (await queries.list_posts(
        node, queries.Filters(org_uri=uri, scope="local"), signed_in=False)).rows[:6]
    ) if actor.kind == "Group" else []
    listed = {c.post["uri"] for c in open_cards}
    return await render(
        request, "actor.html", actor=actor, uri=uri,
        handle=f"@{actor.username}@{node.settings.host}",
        followers=await follows.followers(node, uri),
        following=await follows.following(node, uri),
        posts=[item for item in await cards_of_objects(node, await shown(node, posts))
               if not isinstance(item, Card) or item.post["uri"] not in listed],
        open_cards=open_cards,
    )


async def inbox_view(request: Request) -> Response:
    node = node_of(request)
    recipient = None
    if "username" in request.path_params or request.url.path.startswith("/actor"):
        recipient = await _actor(request)
        if recipient is None:
            return _not_found()
    outcome = await receive(node, request, recipient)
    return JSONResponse({"status": outcome.reason} if outcome.status < 300 else
                        {"error": outcome.reason}, status_code=outcome.status)


def _page(request: Request) -> int | None:
    raw = request.query_params.get("page")
    if raw is None:
        return None
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def _cursor(request: Request) -> Cursor | None:
    """The outbox page asked for: `?page=...` (any value, an old page number too: the newest
    items), `?max_id=N` or `?min_id=N`; None for the collection itself."""
    params = request.query_params
    if not {"page", "max_id", "min_id"} & params.keys():
        return None

    def position(name: str) -> int | None:
        raw = params.get(name, "")
        return int(raw) if raw.isdigit() and len(raw) <= 18 else None  # within a BIGINT

    max_id = position("max_id")
    return Cursor(max_id=max_id, min_id=None if max_id is not None else position("min_id"))


# A page in one statement: its rows, the stored total (kept by triggers on `activities`,
# migration 17: no count over the rows) and whether items lie beyond the cursor on the far
# side. The row nearest the cursor is the first past it, so "an item newer than this page's
# newest" is "an item at or above max_id" (and likewise below min_id). That one is looked for
# in index order: as an EXISTS, PostgreSQL's generic plan of the prepared statement scanned the
# whole table when no such item was there (4.8 ms at 10k activities, against 0.2 ms).
_OUTBOX_TOTAL = "SELECT total FROM outbox_counts WHERE actor_uri = :a"
_OUTBOX_PAGE = (
    f"SELECT seq, uri, payload, ({_OUTBOX_TOTAL}) AS total, "
    "(SELECT seq FROM activities WHERE actor_uri = :a AND public = 1 AND seq {beyond} :s "
    "ORDER BY seq {order_beyond} LIMIT 1) AS beyond "
    "FROM activities WHERE actor_uri = :a AND public = 1 {within} "
    "ORDER BY seq {order} LIMIT {limit}")
# One row more than a page tells whether the page has a neighbour on its near side. The limit
# is written in the text: as a parameter, PostgreSQL could not cost a generic plan for the
# prepared statement and planned every execution anew (a third of the server's CPU per page).
_BELOW = _OUTBOX_PAGE.format(beyond=">=", order_beyond="", within="AND seq < :s",
                             order="DESC", limit=PAGE_SIZE + 1)
_ABOVE = _OUTBOX_PAGE.format(beyond="<=", order_beyond="DESC", within="AND seq > :s",
                             order="", limit=PAGE_SIZE + 1)


async def _outbox_total(node: Node, uri: str) -> int:
    return await node.db.fetch_val(_OUTBOX_TOTAL, {"a": uri}) or 0


ITEMS_HELD = 2_000  # about a hundred pages


def _item(node: Node, row: dict) -> orjson.Fragment:
    """An activity as a page lists it (without its own @context), encoded once per process: a
    stored activity never changes, and peers read the newest pages over and over."""
    items = held(node, "outbox_items")
    key = (row["seq"], row["uri"])
    item = items.get(key)
    if item is None:
        activity = orjson.loads(row["payload"])
        activity.pop("@context", None)
        item = orjson.Fragment(orjson.dumps(activity))
        keep(items, key, item, ITEMS_HELD)
    return item


# Peers read the same outbox pages over and over (the newest above all), and an outbox changes
# only when its actor publishes: each process keeps the pages it served, following the `outbox`
# counter that triggers move in the transaction of every change (migration 26).
PAGES_HELD = 256


async def outbox_view(request: Request) -> Response:
    actor = await _actor(request)
    if actor is None:
        return _not_found()
    node = node_of(request)
    uri = actor_uri(node, actor)
    cursor = _cursor(request)
    cache = watched_cache(node, "outbox", "activities", PAGES_HELD)
    epoch = await cache.fresh(node)
    key = (uri, cursor.query() if cursor is not None else None)
    document = cache.get(key, epoch)
    if document is None:
        document = orjson.Fragment(encode(await _outbox_document(node, uri, cursor)))
        cache.put(node, key, document, epoch)
    return activity_response(document)


async def _outbox_document(node: Node, uri: str, cursor: Cursor | None) -> dict:
    coll = f"{uri}/outbox"
    if cursor is None:
        return cursor_collection(coll, await _outbox_total(node, uri))
    values = {"a": uri}
    if cursor.min_id is not None:
        rows = await node.db.fetch_all(_ABOVE, {**values, "s": cursor.min_id})
        newer, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE][::-1]
        older = bool(rows) and rows[0]["beyond"] is not None
    else:
        # Below max_id; the newest page (no max_id) is below a bound past any position.
        bound = cursor.max_id if cursor.max_id is not None else 1 << 62
        rows = await node.db.fetch_all(_BELOW, {**values, "s": bound})
        older, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        newer = bool(rows) and cursor.max_id is not None and rows[0]["beyond"] is not None
    total = rows[0]["total"] or 0 if rows else await _outbox_total(node, uri)
    return cursor_page(
        coll, cursor, total, [_item(node, r) for r in rows],
        newest=rows[0]["seq"] if rows else None, oldest=rows[-1]["seq"] if rows else None,
        newer=newer, older=older)


async def _relation_view(request: Request, column: str, other: str) -> Response:
    actor = await _actor(request)
    if actor is None:
        return _not_found()
    node = node_of(request)
    uri = actor_uri(node, actor)
    coll = f"{uri}/{'followers' if column == 'followee_uri' else 'following'}"
    where = f"{column} = :a AND state = 'accepted'"
    total = await node.db.fetch_val(f"SELECT COUNT(*) FROM follows WHERE {where}", {"a": uri})
    page = _page(request)
    if page is None:
        if not wants_activity_json(request):
            return RedirectResponse(uri, status_code=303)
        return activity_response(collection(coll, total))
    rows = await node.db.fetch_all(
        f"SELECT {other} AS uri FROM follows WHERE {where} ORDER BY id DESC LIMIT :n OFFSET :o",
        {"a": uri, "n": PAGE_SIZE, "o": (page - 1) * PAGE_SIZE},
    )
    return activity_response(collection_page(coll, page, total, [r["uri"] for r in rows]))


async def followers_view(request: Request) -> Response:
    return await _relation_view(request, "followee_uri", "follower_uri")


async def following_view(request: Request) -> Response:
    return await _relation_view(request, "follower_uri", "followee_uri")


routes = [
    Route("/inbox", inbox_view, methods=["POST"]),
    Route("/actor", signed_fetch(actor_view, json_only=True)),
    Route("/actor/inbox", inbox_view, methods=["POST"]),
    Route("/actor/outbox", signed_fetch(outbox_view)),
    Route("/actor/followers", signed_fetch(followers_view)),
    Route("/actor/following", signed_fetch(following_view)),
]
for prefix in ("/groups", "/users"):
    routes += [
        Route(prefix + "/{username}", signed_fetch(actor_view, json_only=True)),
        Route(prefix + "/{username}/inbox", inbox_view, methods=["POST"]),
        Route(prefix + "/{username}/outbox", signed_fetch(outbox_view)),
        Route(prefix + "/{username}/followers", signed_fetch(followers_view)),
        Route(prefix + "/{username}/following", signed_fetch(following_view)),
    ]
