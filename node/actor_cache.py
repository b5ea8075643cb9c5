"""Local actors kept in memory. Nearly every federation read (WebFinger, an actor, its outbox,
its followers) and every delivery starts from one, and on PostgreSQL reading its row is a round
trip to the server: about a quarter of an outbox page's CPU at 1,000 reads a second.

Every insert, change or removal of `actors` bumps a generation counter in its own transaction
(migration 26), whichever code path or process makes it. A process reads that counter before it
trusts what it holds: at once after this process wrote anything (`Database.writes` moved: its
own change is never missed), else at most every CHECK_EVERY seconds, so a change made by
another process is seen within that time. Moving counter: everything held is dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.generations import GenerationWatch

if TYPE_CHECKING:
    from node.actors import LocalActor
    from node.context import Node

CHECK_EVERY = 0.5  # seconds a change made by another process may go unseen
MAX_ENTRIES = 4096  # the organisations and the members whose documents are read most


class ActorCache:
    def __init__(self) -> None:
        self.by_username: dict[str, LocalActor] = {}
        self.by_id: dict[str, LocalActor] = {}
        self.generation = GenerationWatch("local_actors", CHECK_EVERY)
        self.writes_seen = -1
        # Moves with every emptying: a row read before one is not put back after it (it may
        # be the very row that changed).
        self.epoch = 0

    async def fresh(self, node: Node) -> int:
        """The epoch to read under, after emptying the cache if the actors changed."""
        writes = node.db.writes
        if writes != self.writes_seen or self.generation.due():
            self.writes_seen = writes
            if await self.generation.moved(node):
                self.by_username.clear()
                self.by_id.clear()
                self.epoch += 1
        return self.epoch

    def put(self, actor: LocalActor, epoch: int) -> None:
        """Keep an actor read from the database while the cache was at `epoch`."""
        if epoch != self.epoch:
            return
        if len(self.by_id) >= MAX_ENTRIES:
            oldest = self.by_id.pop(next(iter(self.by_id)))
            self.by_username.pop(oldest.username, None)
        self.by_username[actor.username] = actor
        self.by_id[actor.id] = actor


def actor_cache(node: Node) -> ActorCache:
    """The cache of this process's node."""
    cache = getattr(node, "_actor_cache", None)
    if cache is None:
        cache = ActorCache()
        node._actor_cache = cache  # type: ignore[attr-defined]
    return cache
