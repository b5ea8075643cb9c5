"""Hashtag pages (/tags/{name}: the public posts that carry a tag, where every Hashtag `href`
this node publishes points) and an organisation's featured tags (Mastodon's `featuredTags`)."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from activitypub.vocab import AS_CONTEXT, as_list, is_public
from node.actors import actor_uri, by_username
from node.db import dumps
from node.negotiation import activity_response, wants_activity_json
from node.routes.signed_fetch import signed_fetch
from node.web_support import node_of, render

# Mastodon's hashtag characters: letters, digits, underscore (and the middle dot it allows).
TAG_NAME = re.compile(r"^[\w·]{1,64}$")
SHOWN = 40
# The LIKE prefilter narrows the scan; each candidate is then checked exactly, so that a tag
# named in text or in another field does not count.
CANDIDATES = 400
FEATURED = ("need", "offer")


def _carries(obj: dict[str, Any], name: str) -> bool:
    wanted = name.casefold()
    return any(
        isinstance(tag, dict) and tag.get("type") == "Hashtag"
        and isinstance(tag.get("name"), str) and tag["name"].lstrip("#").casefold() == wanted
        for tag in as_list(obj.get("tag"))
    )


def _web_link(value: Any) -> str | None:
    """Only http(s) links from remote JSON reach an href (no `javascript:`)."""
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("href")
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


async def tagged_objects(request: Request, name: str) -> list[dict[str, Any]]:
    node = node_of(request)
    needle = "%" + dumps("#" + name.lower()) + "%"
    rows = await node.db.fetch_all(
        "SELECT payload, local FROM objects WHERE deleted = 0 AND LOWER(payload) LIKE :n "
        "ORDER BY published DESC LIMIT :limit", {"n": needle, "limit": CANDIDATES})
    found = []
    for row in rows:
        obj = json.loads(row["payload"])
        if _carries(obj, name) and is_public(obj):
            found.append({**obj, "_local": bool(row["local"]),
                          "_link": _web_link(obj.get("url")) or _web_link(obj.get("id")),
                          "_author": _web_link(obj.get("attributedTo"))})
            if len(found) == SHOWN:
                break
    return found


async def tag_view(request: Request) -> Response:
    name = request.path_params["name"]
    if not TAG_NAME.match(name):
        return JSONResponse({"error": "a hashtag is 1 to 64 letters, digits or underscores"},
                            status_code=400)
    node = node_of(request)
    posts = await tagged_objects(request, name)
    if wants_activity_json(request):
        uri = node.url(f"/tags/{name}")
        return activity_response({
            "@context": AS_CONTEXT, "id": uri, "type": "OrderedCollection",
            "totalItems": len(posts), "orderedItems": [p["id"] for p in posts],
        })
    return await render(request, "tags.html", tag=name, posts=posts)


async def featured_tags_view(request: Request) -> Response:
    node = node_of(request)
    org = await by_username(node, request.path_params["username"], "Group")
    if org is None:
        return JSONResponse({"error": "not found"}, status_code=404)
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
