"""Database access through `databases`: SQLite (WAL) by default, PostgreSQL for scale-out."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import databases


def now() -> float:
    return time.time()


def new_id() -> str:
    return uuid.uuid4().hex


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Database:
    """A thin layer over `databases.Database` that knows its dialect."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = "postgresql" if url.startswith(("postgres", "postgresql")) else "sqlite"
        if self.dialect == "sqlite":
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # aiosqlite waits this long on a locked database instead of failing at once.
            self._db = databases.Database(url, timeout=30)
        else:
            self._db = databases.Database(url.replace("postgres://", "postgresql://", 1))

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def connect(self) -> None:
        await self._db.connect()
        if self.dialect == "sqlite":
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA foreign_keys=ON")

    async def disconnect(self) -> None:
        await self._db.disconnect()

    async def execute(self, query: str, values: Mapping[str, Any] | None = None) -> Any:
        return await self._db.execute(query, dict(values or {}))

    async def execute_many(self, query: str, values: list[Mapping[str, Any]]) -> None:
        if values:
            await self._db.execute_many(query, [dict(v) for v in values])

    async def fetch_one(self, query: str, values: Mapping[str, Any] | None = None) -> dict | None:
        row = await self._db.fetch_one(query, dict(values or {}))
        return dict(row._mapping) if row is not None else None

    async def fetch_all(self, query: str, values: Mapping[str, Any] | None = None) -> list[dict]:
        rows = await self._db.fetch_all(query, dict(values or {}))
        return [dict(r._mapping) for r in rows]

    async def fetch_val(self, query: str, values: Mapping[str, Any] | None = None) -> Any:
        return await self._db.fetch_val(query, dict(values or {}))

    def transaction(self) -> Any:
        return self._db.transaction()
