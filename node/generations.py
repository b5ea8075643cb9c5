"""Caches that follow a counter of `cache_generations` (migrations 24 and 26): triggers bump it
in the very transaction that changes the rows a cache holds, whichever process or code path
makes the change, so one cheap read of one row tells a process whether what it keeps in memory
is still what the database says."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.context import Node


class GenerationWatch:
    """The counter `name` as this process last read it, read again at most every
    `check_every` seconds unless asked to look now."""

    def __init__(self, name: str, check_every: float) -> None:
        self.name = name
        self.check_every = check_every
        self.value: int | None = None
        self.checked_at = float("-inf")

    def due(self) -> bool:
        return time.monotonic() - self.checked_at >= self.check_every

    async def moved(self, node: Node) -> bool:
        """Reads the counter; True when it is not what it was at the last read (or the first
        read), that is when a cache of these rows must be emptied."""
        value = await node.db.fetch_val(
            "SELECT value FROM cache_generations WHERE name = :n", {"n": self.name})
        self.checked_at = time.monotonic()
        moved, self.value = value != self.value, value
        return moved


def held(node: Node, name: str) -> dict[Hashable, Any]:
    """A dict of this process's node, named `name`, for what it keeps in memory."""
    return node.__dict__.setdefault(f"_held_{name}", {})


def keep(entries: dict[Hashable, Any], key: Hashable, value: Any, limit: int) -> None:
    """Store `value`; when `limit` entries are there already, the oldest goes first."""
    if len(entries) >= limit:
        del entries[next(iter(entries))]
    entries[key] = value


CHECK_EVERY = 0.5  # seconds a change made by another process may go unseen


class WatchedCache:
    """What was read from `table`, whose changes generation `name` counts, kept while the
    counter stays put. The counter is read at once after this process wrote to the table
    (`Database.writes_to`: its own change is never missed), else at most every CHECK_EVERY
    seconds, so a change made by another process is seen within that time. When it moved,
    everything goes."""

    def __init__(self, name: str, table: str, max_entries: int) -> None:
        self.table = table
        self.entries: dict[Hashable, Any] = {}
        self.max_entries = max_entries
        self.generation = GenerationWatch(name, CHECK_EVERY)
        self.writes_seen = -1
        # Moves with every emptying: what was read before one is not put back after it (it
        # may be the very row that changed).
        self.epoch = 0

    async def fresh(self, node: Node) -> int | None:
        """The epoch to read under, after emptying the cache if its rows changed; None when
        the cache is not for this task now (its transaction changed the rows)."""
        if node.db.writing(self.table):
            return None
        writes = node.db.writes_to(self.table)
        if writes != self.writes_seen or self.generation.due():
            self.writes_seen = writes
            if await self.generation.moved(node):
                self.entries.clear()
                self.epoch += 1
        return self.epoch

    def get(self, key: Hashable, epoch: int | None) -> Any:
        return None if epoch is None else self.entries.get(key)

    def put(self, node: Node, key: Hashable, value: Any, epoch: int | None) -> None:
        """Keep what was read while the cache was at `epoch`, unless it was read inside a
        transaction (which may yet be rolled back)."""
        if epoch == self.epoch and not node.db.in_transaction():
            keep(self.entries, key, value, self.max_entries)


def watched_cache(node: Node, name: str, table: str, max_entries: int) -> WatchedCache:
    """This process's cache of what it read from `table`, whose changes `name` counts."""
    caches = held(node, "watched_caches")
    cache = caches.get(name)
    if cache is None:
        cache = caches[name] = WatchedCache(name, table, max_entries)
    return cache
