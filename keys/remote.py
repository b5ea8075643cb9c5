"""Public keys of remote actors, found by `keyId`: in this process's memory (keys/cache.py),
else in `remote_actors`, else fetched; fetched once more when a signature fails (the remote may
have rotated its key)."""

from __future__ import annotations

from activitypub.transport import FetchError
from keys.cache import RemoteKey, key_cache
from node.context import Node
from node.remote_actors import fetch_actor

__all__ = ["RemoteKey", "cached_key", "fetch_key", "get_key"]


def _actor_uri_of(key_id: str) -> str:
    # Mastodon, GoToSocial and most others name keys `<actor>#main-key`; the fragment-less URL
    # is the actor (or, for some servers, a key document that names its owner).
    return key_id.split("#", 1)[0]


async def cached_key(node: Node, key_id: str) -> RemoteKey | None:
    cache = await key_cache(node).fresh(node)
    key = cache.get(key_id)
    if key is not None:
        return key
    epoch = cache.epoch
    row = await node.db.fetch_one(
        "SELECT uri, public_key_pem FROM remote_actors WHERE public_key_id = :k", {"k": key_id}
    )
    if row is None or not row["public_key_pem"]:
        return None
    key = RemoteKey(key_id, row["uri"], row["public_key_pem"])
    cache.put(key, epoch)
    return key


async def fetch_key(node: Node, key_id: str) -> RemoteKey:
    actor = await fetch_actor(node, _actor_uri_of(key_id))
    if actor.public_key_id != key_id or not actor.public_key_pem:
        raise FetchError(f"actor {actor.uri} does not present the key {key_id}")
    key = RemoteKey(key_id, actor.uri, actor.public_key_pem)
    cache = key_cache(node)
    cache.put(key, cache.epoch)  # just fetched and stored: the freshest there is
    return key


async def get_key(node: Node, key_id: str, refresh: bool = False) -> RemoteKey:
    if not refresh:
        key = await cached_key(node, key_id)
        if key is not None:
            return key
    return await fetch_key(node, key_id)
