"""Watching a counter of `cache_generations` (migration 24): triggers bump it in the very
transaction that changes the rows a cache holds, whichever process or code path makes the
change, so one cheap read of one row tells a process whether what it keeps in memory is still
what the database says."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

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
