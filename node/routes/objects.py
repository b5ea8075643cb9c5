"""A URL for every object and activity the node publishes."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activitypub.vocab import AS_CONTEXT
from node import errors
from node.i18n import N_
from node.negotiation import activity_response, wants_activity_json
from node.routes.signed_fetch import signed_fetch
from node.timeline import shown
from node.web_support import node_of, render


async def object_view(request: Request) -> Response:
    node = node_of(request)
    uri = node.url(request.url.path)
    row = await node.db.fetch_one(
        "SELECT payload, model, local, deleted, public FROM objects o LEFT JOIN "
        "(SELECT object_uri, MAX(public) AS public FROM activities GROUP BY object_uri) a "
        "ON a.object_uri = o.uri WHERE o.uri = :u AND o.local = 1", {"u": uri})
    if row is None or not row["public"]:
        errors.not_found()
    doc = orjson.loads(row["payload"])
    if row["deleted"] and not wants_activity_json(request):
        raise errors.PageError(410, N_("Its author deleted this post."))
    if row["deleted"]:
        return activity_response({"@context": AS_CONTEXT, **doc}, status=410)
    if wants_activity_json(request):
        return activity_response(doc)
    return await render(request, "object.html", obj=(await shown(node, [row]))[0])


async def activity_view(request: Request) -> Response:
    node = node_of(request)
    uri = node.url(request.url.path)
    row = await node.db.fetch_one(
        "SELECT payload FROM activities WHERE uri = :u AND public = 1", {"u": uri})
    if row is None:
        errors.not_found()
    return activity_response(orjson.loads(row["payload"]))


routes = [
    Route("/objects/{id}", signed_fetch(object_view, json_only=True)),
    Route("/activities/{id}", signed_fetch(activity_view)),
]
