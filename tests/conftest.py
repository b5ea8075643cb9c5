"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from node.app import create_app
from node.config import Settings, load_settings
from node.context import Node
from tests.databases import drop_postgres_database, make_database_url
from tests.peers import free_port

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"


@pytest.fixture
def database_url(tmp_path: Path):
    url = make_database_url(tmp_path)
    yield url
    if url.startswith("postgresql"):
        drop_postgres_database(url)


def node_settings(tmp_path: Path, database_url: str, **overrides: str) -> Settings:
    env = {
        "NODE_BASE_URL": "http://127.0.0.1:8999",
        "NODE_DATA_DIR": str(tmp_path),
        "NODE_DATABASE_URL": database_url,
        "NODE_SECRET_KEY": "test-secret",
        "NODE_ADMIN_EMAIL": ADMIN_EMAIL,
        "NODE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "NODE_RUN_WORKER": "0",
        "NODE_BACKOFF_SCALE": "0.001",
        "NODE_DELIVERY_TIMEOUT": "3",
        "NODE_FETCH_TIMEOUT": "3",
    }
    env.update(overrides)
    return load_settings(env)


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    """The ASGI app with its lifespan run, and an httpx client that talks to it in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
            yield app.state.node, client


async def until(check: Callable[[], Awaitable[Any]], seconds: float = 20) -> Any:
    """Await `check()` until it returns something true (returned), or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {seconds} s: {check}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serve(tmp: Path, url: str, host: str, **overrides: str
                ) -> AsyncIterator[tuple[Node, str]]:
    """A node served over HTTP by uvicorn on `host` (a free port), with its delivery worker,
    in this event loop: for tests where peers must reach the node itself."""
    port = free_port(host)
    base = f"http://{host}:{port}"
    settings = node_settings(tmp, url, **{
        "NODE_BASE_URL": base, "NODE_RUN_WORKER": "1", "NODE_RATE_LOGIN_PER_ADDRESS": "0",
        "NODE_ALLOW_HTTP": "1", "NODE_ALLOW_PRIVATE_ADDRESSES": "1", **overrides})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                               lifespan="off"))
        task = asyncio.create_task(server.serve())
        await until(lambda: asyncio.sleep(0, server.started))
        try:
            yield app.state.node, base
        finally:
            server.should_exit = True
            await task


@pytest.fixture
async def app_node(tmp_path: Path, database_url: str):
    async with running_app(node_settings(tmp_path, database_url)) as (node, client):
        yield node, client


@pytest.fixture(scope="module")
def module_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    url = make_database_url(tmp)
    yield tmp, url
    if url.startswith("postgresql"):
        drop_postgres_database(url)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def module_node(module_database: tuple[Path, str]):
    """One node for a whole test module (starting a node is the slow part); the module's
    tests run in the module's event loop (`pytest.mark.asyncio(loop_scope="module")`)."""
    tmp, url = module_database
    async with running_app(node_settings(tmp, url)) as pair:
        yield pair
