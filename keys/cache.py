"""Remote actors' public keys kept in memory, so that verifying an inbox POST reads nothing
from the database when the signer is known.

A key may change or go in any process: an `Update` that rotates it, a refetch after a failed
signature, a `Delete` of the actor, a moderator's purge. The database keeps a generation
counter for `remote_actors` (migration 24), bumped by triggers in the very transaction of such
a change, whichever process or code path makes it. Each process reads that one row at most every
CHECK_EVERY seconds while it uses the cache, and drops every entry when the count moved: a key
changed elsewhere is trusted for at most that long. A change made in this process drops the
actor's keys at once (`changed()`, called where this process writes or removes actors).

A signature that fails with a cached key is never final either: the verifier fetches the key
once more (keys/request_signer.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from node.generations import GenerationWatch

if TYPE_CHECKING:
    from node.context import Node

CHECK_EVERY = 0.5  # seconds between two reads of the generation, per process
MAX_ENTRIES = 20_000  # keys of that many senders (a few MB); the oldest go first


@dataclass(frozen=True)
class RemoteKey:
    key_id: str
    owner: str
    public_pem: str


class KeyCache:
    def __init__(self) -> None:
        self.entries: dict[str, RemoteKey] = {}
        self.generation = GenerationWatch("remote_actors", CHECK_EVERY)
        # Moves with every emptying: a key read from the database before an emptying is not
        # put back after it (it may be the very key that changed).
        self.epoch = 0

    async def fresh(self, node: Node) -> KeyCache:
        """This cache, emptied first if another process changed a key since the last look."""
        if self.generation.due() and await self.generation.moved(node):
            self._empty()
        return self

    def get(self, key_id: str) -> RemoteKey | None:
        return self.entries.get(key_id)

    def put(self, key: RemoteKey, epoch: int) -> None:
        """Keep a key read from the database while the cache was at `epoch`."""
        if epoch != self.epoch:
            return
        if len(self.entries) >= MAX_ENTRIES:
            del self.entries[next(iter(self.entries))]
        self.entries[key.key_id] = key

    def _empty(self) -> None:
        self.entries.clear()
        self.epoch += 1

    def forget(self, owner: str) -> None:
        for key_id in [k for k, key in self.entries.items() if key.owner == owner]:
            del self.entries[key_id]
        self.epoch += 1


def key_cache(node: Node) -> KeyCache:
    """The cache of this process's node."""
    cache = getattr(node, "_key_cache", None)
    if cache is None:
        cache = KeyCache()
        node._key_cache = cache  # type: ignore[attr-defined]
    return cache


def changed(node: Node, actor_uri: str) -> None:
    """Call after this process wrote or removed a remote actor (its key may be new or gone):
    its keys leave this process's cache at once (other processes learn it from the generation
    counter the same write moved)."""
    key_cache(node).forget(actor_uri)
