"""Hashtag pages (/tags/{name}: the public posts that carry a tag, where every Hashtag `href`
this node publishes points) and an organisation's featured tags (Mastodon's `featuredTags`)."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activitypub.vocab import AS_CONTEXT
from node import errors
from node.actors import actor_uri, by_username
from node.db import dumps
from node.i18n import N_
from node.negotiation import activity_response, wants_activity_json
from node.posts.cards import cards_of_objects
from node.routes.signed_fetch import signed_fetch
from node.timeline import ShownObject, shown
from node.web_support import node_of, render

# Mastodon's hashtag characters: letters, digits, underscore (and the middle dot it allows).
TAG_NAME = re.compile(r"^[\w·]{1,64}$")
SHOWN = 40
# The LIKE prefilter narrows the scan; each candidate is then checked exactly, so that a tag
# named in text or in another field does not count.
CANDIDATES = 400
FEATURED = ("need", "offer")


async def tagged_objects(request: Request, name: str) -> list[ShownObject]:
    node = node_of(request)
    # The model lists hashtags without '#'; rows from before models were kept carry none.
    rows = await node.db.fetch_all(
        "SELECT payload, model, local, deleted FROM objects WHERE deleted = 0 "
        "AND public_audience = 1 AND (LOWER(model) LIKE :m "
        "OR (model IS NULL AND LOWER(payload) LIKE :n)) "
        "ORDER BY published DESC LIMIT :limit",
        {"m": "%" + dumps(name.lower()) + "%", "n": "%" + dumps("#" + name.lower()) + "%",
         "limit": CANDIDATES})
    wanted = name.casefold()
    found = [item for item in await shown(node, rows)
             if any(tag.casefold() == wanted for tag in item.model.hashtags)]
    return found[:SHOWN]


async def tag_view(request: Request) -> Response:
    name = request.path_params["name"]
    if not TAG_NAME.match(name):
        raise errors.PageError(400, N_("A hashtag is 1 to 64 letters, digits or "
                                       "underscores."))
    node = node_of(request)
    posts = await tagged_objects(request, name)
    if wants_activity_json(request):
        uri = node.url(f"/tags/{name}")
        return activity_response({
            "@context": AS_CONTEXT, "id": uri, "type": "OrderedCollection",
            "totalItems": len(posts), "orderedItems": [p.model.id for p in posts],
        })
    return await render(request, "tags.html", tag=name,
                        posts=await cards_of_objects(node, posts))


async def featured_tags_view(request: Request) -> Response:
    node = node_of(request)
    org = await by_username(node, request.path_params["username"], "Group")
    if org is None:
        errors.not_found()
    items = [{"type": "Hashtag", "name": f"#{t}", "href": node.url(f"/tags/{t}")}
             for t in FEATURED]
    return activity_response({
        "@context": AS_CONTEXT, "id": f"{actor_uri(node, org)}/tags", "type": "Collection",
        "totalItems": len(items), "items": items,
    })


routes = [
    Route("/tags/{name}", signed_fetch(tag_view, json_only=True)),
    Route("/groups/{username}/tags", signed_fetch(featured_tags_view)),
]
