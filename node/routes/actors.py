"""Actor documents and their collections; the per-actor and shared inboxes."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from activitypub.collections import PAGE_SIZE, collection, collection_page
from inbox.receiver import receive
from node import follows
from node.actors import LocalActor, actor_uri, by_username, instance_actor, to_document
from node.negotiation import activity_response, wants_activity_json
from node.routes.signed_fetch import signed_fetch
from node.timeline import shown
from node.web_support import node_of, render


async def _actor(request: Request) -> LocalActor | None:
    node = node_of(request)
    if request.url.path.startswith("/actor"):
        return await instance_actor(node)
    kind = "Group" if request.url.path.startswith("/groups/") else "Person"
    return await by_username(node, request.path_params["username"], kind)


def _not_found() -> Response:
    return JSONResponse({"error": "not found"}, status_code=404)


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
    return await render(
        request, "actor.html", actor=actor, uri=uri,
        handle=f"@{actor.username}@{node.settings.host}",
        followers=await follows.followers(node, uri),
        following=await follows.following(node, uri),
        posts=await shown(node, posts),
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


async def outbox_view(request: Request) -> Response:
    actor = await _actor(request)
    if actor is None:
        return _not_found()
    node = node_of(request)
    uri = actor_uri(node, actor)
    coll = f"{uri}/outbox"
    total = await node.db.fetch_val(
        "SELECT COUNT(*) FROM activities WHERE actor_uri = :a AND public = 1", {"a": uri})
    page = _page(request)
    if page is None:
        return activity_response(collection(coll, total))
    rows = await node.db.fetch_all(
        "SELECT payload FROM activities WHERE actor_uri = :a AND public = 1 "
        "ORDER BY seq DESC LIMIT :n OFFSET :o",
        {"a": uri, "n": PAGE_SIZE, "o": (page - 1) * PAGE_SIZE},
    )
    items = [json.loads(r["payload"]) for r in rows]
    for item in items:
        item.pop("@context", None)
    return activity_response(collection_page(coll, page, total, items))


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
