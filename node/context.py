"""The running node's shared parts, handed to every layer as one object."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from activitypub.origin import same_origin
from activitypub.transport import Transport
from node.config import Settings
from node.db import Database
from node.policy import is_blocked


@dataclass
class Node:
    settings: Settings
    db: Database
    transport: Transport
    # Set once the worker runs inside this process; lets publishing wake it at once.
    wake_worker: object | None = field(default=None)

    @classmethod
    def create(cls, settings: Settings) -> Node:
        node = cls(
            settings=settings,
            db=Database(settings.database_url),
            transport=Transport(
                allow_private=settings.allow_private_addresses,
                allow_http=settings.allow_http,
                timeout=settings.fetch_timeout,
                max_bytes=settings.max_fetch_bytes,
            ),
        )
        node.transport.is_refused = functools.partial(is_blocked, node)
        return node

    def url(self, path: str) -> str:
        return self.settings.url(path)

    def is_local(self, uri: str | None) -> bool:
        """The URI is on this node's origin (the one origin rule, activitypub/origin.py)."""
        return same_origin(uri, self.settings.base_url)

    def notify_worker(self) -> None:
        if self.wake_worker is not None:
            self.wake_worker.set()  # type: ignore[attr-defined]

    async def start(self) -> None:
        from node.migrations import migrate

        await self.db.connect()
        await migrate(self.db)

    async def stop(self) -> None:
        await self.transport.aclose()
        await self.db.disconnect()
