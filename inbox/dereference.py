"""Fetching an object from its origin, when what a peer embedded cannot be trusted (an
Announce of another server's post, as Mastodon's `announce.rb` does), and finding which object
a link a person pasted names."""

from __future__ import annotations

import logging

from activitypub.discovery import alternate_actor_link
from activitypub.model import InvalidObject, RemoteObject, from_json
from activitypub.origin import same_origin
from activitypub.transport import ACCEPT, FetchError
from activitypub.vocab import id_of
from node.actors import instance_actor, signing_key
from node.context import Node

log = logging.getLogger(__name__)


async def fetch_object(node: Node, uri: str) -> tuple[RemoteObject, dict] | None:
    """The object at `uri`, fetched with the instance actor's signed GET and converted; None
    when it cannot be had or is not what it claims (its id must be the URI asked for)."""
    if node.is_local(uri):
        return None
    key = signing_key(node, await instance_actor(node))
    try:
        doc = await node.transport.get_json(uri, key)
    except (FetchError, ValueError) as exc:
        log.info("cannot fetch %s: %s", uri, exc)
        return None
    if not isinstance(doc, dict) or doc.get("id") != uri or not same_origin(doc["id"], uri):
        log.info("%s answered with another object's id; dropped", uri)
        return None
    try:
        return from_json(doc), doc
    except InvalidObject as exc:
        log.info("fetched %s is not kept: %s", uri, exc)
        return None


async def object_link(node: Node, url: str) -> str | None:
    """The id of the object a link names, on the link's own server: the id its JSON gives
    (Mastodon's `url` of a status is not its id) or the ActivityPub alternate its web page
    announces. None when it names nothing there; the object is then fetched from that id."""
    key = signing_key(node, await instance_actor(node))
    try:
        resp = await node.transport.request(
            "GET", url, key=key, headers={"Accept": f"{ACCEPT}, text/html;q=0.5"})
        if resp.status >= 400:
            return None
        if "json" in resp.headers.get("content-type", "").lower():
            ident = id_of(resp.json())
        else:
            ident = alternate_actor_link(resp.body.decode("utf-8", "replace"), resp.url)
    except (FetchError, ValueError) as exc:
        log.info("cannot read %s: %s", url, exc)
        return None
    return ident if ident and ident != url and same_origin(ident, url) else None
