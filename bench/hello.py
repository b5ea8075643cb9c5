"""A hello-world ASGI endpoint under the same uvicorn as the node (httptools, one worker): the
machine's own ceiling for an HTTP request answered by Python, measured in each run
(bench/harness.machine_limits).

`/store` is the same endpoint keeping each request's body in the database of
`HELLO_DATABASE_URL` (one INSERT: on SQLite run on the loop, in WAL mode, as the node runs its
short writes; on PostgreSQL through an asyncpg pool): the machine's own cost of a request that
is stored, without anything of the node, to set beside the node's inbox."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

TABLE = "CREATE TABLE IF NOT EXISTS hello_store (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
store: dict[str, Any] = {}


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def stored(request: Request) -> PlainTextResponse:
    body = (await request.body()).decode()
    if "sqlite" in store:
        with store["sqlite"]:
            store["sqlite"].execute("INSERT INTO hello_store (body) VALUES (?)", (body,))
    else:
        await store["pool"].execute("INSERT INTO hello_store (body) VALUES ($1)", body)
    return PlainTextResponse("stored", status_code=202)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ.get("HELLO_DATABASE_URL", "")
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None,
                               check_same_thread=False, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(TABLE)
        conn.isolation_level = "DEFERRED"
        store["sqlite"] = conn
    elif url:
        import asyncpg

        store["pool"] = await asyncpg.create_pool(url, min_size=1, max_size=8)
        await store["pool"].execute(TABLE.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY"))
    yield
    if "pool" in store:
        await store["pool"].close()


app = Starlette(routes=[Route("/", hello, methods=["GET", "POST"]),
                        Route("/store", stored, methods=["POST"])], lifespan=lifespan)
