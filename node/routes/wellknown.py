"""/.well-known/webfinger, host-meta and NodeInfo."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activitypub import nodeinfo, webfinger
from activitypub.vocab import JRD_JSON
from node.actors import (
    INSTANCE_USERNAME,
    actor_uri,
    by_uri,
    by_username,
    gone_for_good,
    instance_actor,
    site_name,
)
from node.negotiation import json_response
from node.web_support import node_of


async def webfinger_view(request: Request) -> Response:
    node = node_of(request)
    resource = request.query_params.get("resource", "")
    if not resource:
        return json_response({"error": "the resource parameter is required"}, status=400)
    actor = None
    if resource.startswith(("http://", "https://")):
        actor = await by_uri(node, resource)
    else:
        try:
            username, host = webfinger.parse_handle(resource)
        except webfinger.HandleError as exc:
            return json_response({"error": str(exc)}, status=400)
        if host in (node.settings.host.lower(), node.settings.domain.lower()):
            if username in (INSTANCE_USERNAME, node.settings.domain):
                actor = await instance_actor(node)
            else:
                actor = await by_username(node, username)
    if actor is None:
        return json_response({"error": "no such account here"}, status=404)
    if await gone_for_good(node, actor):
        return json_response({"error": "this account was deleted"}, status=410)
    uri = actor_uri(node, actor)
    doc = webfinger.jrd(actor.username, node.settings.host, uri, uri)
    return json_response(doc, media_type=JRD_JSON)


async def host_meta_view(request: Request) -> Response:
    return Response(webfinger.host_meta(node_of(request).settings.base_url),
                    media_type="application/xrd+xml")


async def nodeinfo_discovery(request: Request) -> Response:
    return json_response(nodeinfo.discovery(node_of(request).settings.base_url))


async def nodeinfo_view(request: Request) -> Response:
    node = node_of(request)
    users = await node.db.fetch_val("SELECT COUNT(*) FROM users")
    posts = await node.db.fetch_val("SELECT COUNT(*) FROM objects WHERE local = 1 AND deleted = 0")
    doc = nodeinfo.document(
        version="0.1.0", users_total=users or 0, active_month=users or 0, local_posts=posts or 0,
        open_registrations=True, node_name=await site_name(node),
    )
    return json_response(
        doc, media_type=f'application/json; profile="{nodeinfo.SCHEMA_21}#"'
    )


routes = [
    Route("/.well-known/webfinger", webfinger_view),
    Route("/.well-known/host-meta", host_meta_view),
    Route("/.well-known/nodeinfo", nodeinfo_discovery),
    Route("/nodeinfo/2.1", nodeinfo_view),
]
