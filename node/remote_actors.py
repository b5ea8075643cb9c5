"""Remote actors: WebFinger resolution, signed fetch, and the local cache of what was fetched."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from activitypub.html import plain_text, sanitize_html
from activitypub.origin import host_label, is_http_url, same_origin
from activitypub.transport import FetchError
from activitypub.vocab import ACTOR_TYPES, id_of, types_of
from activitypub.webfinger import parse_handle, self_link
from keys.cache import changed as key_changed
from node.actors import instance_actor, signing_key
from node.context import Node
from node.db import dumps, now
from node.policy import is_blocked

log = logging.getLogger(__name__)

# A cached actor is refetched after this long; keys are refetched sooner on a bad signature.
ACTOR_TTL = 24 * 3600


@dataclass(frozen=True)
class RemoteActor:
    uri: str
    type: str
    username: str
    host: str
    name: str
    inbox: str
    shared_inbox: str | None
    followers: str | None
    url: str | None
    public_key_id: str | None
    public_key_pem: str | None

    @property
    def handle(self) -> str:
        return f"@{self.username}@{self.host}"

    @property
    def delivery_inbox(self) -> str:
        return self.shared_inbox or self.inbox

    @classmethod
    def from_row(cls, row: dict) -> RemoteActor:
        return cls(
            uri=row["uri"], type=row["type"], username=row["username"], host=row["host"],
            name=row["name"], inbox=row["inbox"], shared_inbox=row["shared_inbox"],
            followers=row["followers"], url=row["url"], public_key_id=row["public_key_id"],
            public_key_pem=row["public_key_pem"],
        )


USERNAME = re.compile(r"[\w.~-]{1,100}")


def _http(value: Any) -> str | None:
    return value if is_http_url(value) else None


def parse_actor(doc: Any, fetched_from: str) -> dict[str, Any]:
    """The fields we keep from an actor document; FetchError if it is not a usable actor."""
    if not isinstance(doc, dict):
        raise FetchError(f"{fetched_from} is not a JSON object")
    uri = doc.get("id")
    if not isinstance(uri, str) or not (types_of(doc) & ACTOR_TYPES):
        raise FetchError(f"{fetched_from} is not an actor")
    if not same_origin(uri, fetched_from):
        raise FetchError(f"{fetched_from} claims the id {uri} of another host")
    inbox = doc.get("inbox")
    if not is_http_url(inbox):
        raise FetchError(f"actor {uri} has no inbox")
    key = doc.get("publicKey")
    if isinstance(key, list):
        key = next((k for k in key if isinstance(k, dict)), None)
    key_id = key.get("id") if isinstance(key, dict) else None
    key_pem = key.get("publicKeyPem") if isinstance(key, dict) else None
    if isinstance(key, dict) and id_of(key.get("owner")) not in (None, uri):
        raise FetchError(f"actor {uri} presents a key owned by someone else")
    endpoints = doc.get("endpoints") if isinstance(doc.get("endpoints"), dict) else {}
    icon = doc.get("icon")
    name = doc.get("name")
    username = doc.get("preferredUsername")
    summary = doc.get("summary")
    return {
        "uri": uri,
        "type": sorted(types_of(doc) & ACTOR_TYPES)[0],
        # Shapes checked one by one: these fields reach pages and the delivery queue.
        "username": username if isinstance(username, str)
        and USERNAME.fullmatch(username) else "",
        "host": host_label(uri),
        "name": plain_text(name)[:100] if isinstance(name, str) else "",
        "summary": sanitize_html(summary[:5000]) if isinstance(summary, str) else "",
        "url": _http(id_of(doc.get("url")) if not isinstance(doc.get("url"), str)
                     else doc["url"]),
        "icon_url": _http(icon.get("url")) if isinstance(icon, dict) else None,
        "inbox": inbox,
        "shared_inbox": _http(endpoints.get("sharedInbox")),
        "outbox": _http(doc.get("outbox")),
        "followers": _http(doc.get("followers")),
        "public_key_id": key_id if isinstance(key_id, str) else None,
        "public_key_pem": key_pem if isinstance(key_pem, str) else None,
        "raw": dumps(doc),
        "fetched_at": now(),
    }


async def store_actor(node: Node, fields: dict[str, Any]) -> RemoteActor:
    columns = list(fields)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "uri")
    await node.db.execute(
        f"INSERT INTO remote_actors ({', '.join(columns)}) VALUES "
        f"({', '.join(':' + c for c in columns)}) ON CONFLICT (uri) DO UPDATE SET {updates}",
        fields,
    )
    key_changed(node, fields["uri"])
    return RemoteActor.from_row(fields)


async def fetch_actor(node: Node, uri: str) -> RemoteActor:
    """Fetch an actor with a GET signed by the instance actor, and cache it."""
    if await is_blocked(node, uri):
        raise FetchError(f"refusing to fetch {uri}: its domain is blocked by this node")
    instance = await instance_actor(node)
    doc = await node.transport.get_json(uri, signing_key(node, instance))
    return await store_actor(node, parse_actor(doc, uri))


async def get_actor(node: Node, uri: str, refresh: bool = False) -> RemoteActor:
    if not refresh:
        row = await node.db.fetch_one("SELECT * FROM remote_actors WHERE uri = :u", {"u": uri})
        if row is not None and now() - row["fetched_at"] < ACTOR_TTL:
            return RemoteActor.from_row(row)
    return await fetch_actor(node, uri)


async def cached_actor(node: Node, uri: str) -> RemoteActor | None:
    row = await node.db.fetch_one("SELECT * FROM remote_actors WHERE uri = :u", {"u": uri})
    return RemoteActor.from_row(row) if row else None


async def resolve_handle(node: Node, handle: str) -> RemoteActor:
    """`@food@other.example` -> the actor, by WebFinger then a signed fetch."""
    username, host = parse_handle(handle)
    if await is_blocked(node, host):
        raise FetchError(f"refusing {handle}: its domain is blocked by this node")
    scheme = node.transport.scheme_for(host)
    query = urlencode({"resource": f"acct:{username}@{host}"})
    url = f"{scheme}://{host}/.well-known/webfinger?{query}"
    jrd = await node.transport.get_json(url, None, accept="application/jrd+json")
    if not isinstance(jrd, dict):
        raise FetchError(f"WebFinger at {host} did not answer a JRD document")
    href = self_link(jrd)
    if not href:
        raise FetchError(f"WebFinger at {host} knows no ActivityPub actor for {handle}")
    return await fetch_actor(node, href)
