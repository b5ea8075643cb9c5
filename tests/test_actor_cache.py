"""Local actors held in each process's memory (node/actor_cache.py): a change is never missed by
the process that made it, reaches the other processes within the cache's bound, and nothing a
rolled-back transaction read is kept. Runs on SQLite and, with ENTRAIDE_TEST_DB=postgres, on
PostgreSQL; the last test uses a real node with two web workers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from activitypub.vocab import ACTIVITY_JSON
from node import actor_cache as cache_module
from node.actor_cache import actor_cache
from node.actors import by_id, by_username
from node.config import Settings
from node.context import Node
from node.organisations import ProfileForm, save_profile
from tests.conftest import node_settings, running_app
from tests.nodes import NodeProcess


async def _rename(node: Node, name: str) -> None:
    await node.db.execute("UPDATE actors SET name = :n WHERE username = 'voisins'", {"n": name})


async def test_an_actor_is_read_once_and_held(app_node):
    node, _ = app_node
    first = await by_username(node, "voisins", "Group")
    assert first is not None
    assert await by_username(node, "VOISINS", "Group") is first
    assert await by_id(node, first.id) is first
    assert await by_username(node, "voisins", "Person") is None  # the kind still counts
    assert await by_username(node, "nobody") is None
    assert "nobody" not in actor_cache(node).by_username  # misses are not held


async def test_this_process_sees_its_own_change_at_once(app_node):
    node, client = app_node
    org = await by_username(node, "voisins", "Group")
    assert org is not None
    await _rename(node, "Voisins du parc")
    assert (await by_username(node, "voisins")).name == "Voisins du parc"
    # Through the organisation's own code path, and as a peer reads it right after.
    form = ProfileForm("Les Voisins", {"fr": "Entraide"}, "", "", "", "", "", ())
    await save_profile(node, org, form)
    document = (await client.get("/groups/voisins", headers={"Accept": ACTIVITY_JSON})).json()
    assert document["name"] == "Les Voisins"
    assert (await by_id(node, org.id)).name == "Les Voisins"


async def test_another_process_change_is_seen_within_the_bound(tmp_path: Path,
                                                               database_url: str):
    settings: Settings = node_settings(tmp_path, database_url)
    async with running_app(settings) as (node, _):
        other = Node.create(settings)  # a second process of the same node: its own memory
        await other.start()
        try:
            held = await by_username(node, "voisins")
            assert held is not None and await by_username(node, "voisins") is held
            await _rename(other, "Renamed elsewhere")
            # Within CHECK_EVERY this process may still answer from memory...
            assert (await by_username(node, "voisins")) is held
            # ...and once it has passed, it reads the counter and drops what it held.
            actor_cache(node).generation.checked_at -= cache_module.CHECK_EVERY
            assert (await by_username(node, "voisins")).name == "Renamed elsewhere"
        finally:
            await other.stop()


async def test_what_a_rolled_back_transaction_read_is_not_kept(app_node):
    node, _ = app_node
    before = (await by_username(node, "voisins")).name

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        async with node.db.transaction():
            await _rename(node, "Never committed")
            assert (await by_username(node, "voisins")).name == "Never committed"
            raise Undo
    assert (await by_username(node, "voisins")).name == before


async def test_the_cache_is_bounded(app_node, monkeypatch):
    node, _ = app_node
    monkeypatch.setattr(cache_module, "MAX_ENTRIES", 1)
    org = await by_username(node, "voisins")
    instance = await by_username(node, "instance")
    cache = actor_cache(node)
    assert list(cache.by_id) == [instance.id] and list(cache.by_username) == ["instance"]
    assert (await by_username(node, "voisins")).id == org.id


@pytest.mark.e2e
def test_two_web_workers_serve_an_actor_changed_by_another_process(tmp_path: Path):
    """A node with two web workers answers the actor document from memory; a change written by
    another process (here the test) reaches both workers' answers within the bound."""
    node = NodeProcess(tmp_path / "n", host="127.0.19.20", serve_args=("--workers", "2"))
    node.start()
    try:
        def names(count: int) -> set[str]:
            with httpx.Client(base_url=node.base, timeout=10) as client:
                # A new connection per request: the kernel spreads them over both workers.
                return {httpx.get(node.org_uri, headers={"Accept": ACTIVITY_JSON},
                                  timeout=10).json()["name"] for _ in range(count)} | {
                    client.get(node.org_uri, headers={"Accept": ACTIVITY_JSON}).json()["name"]}

        assert names(20) == {"Voisins"}
        asyncio.run(_rename_in(node.database_url, "Voisins du quartier"))
        deadline = time.monotonic() + 10
        while names(20) != {"Voisins du quartier"}:
            assert time.monotonic() < deadline, "a worker kept the old name"
            time.sleep(0.1)
    finally:
        node.stop()


async def _rename_in(database_url: str, name: str) -> None:
    from node.db import Database

    db = Database(database_url)
    await db.connect()
    try:
        await db.execute("UPDATE actors SET name = :n WHERE username = 'voisins'", {"n": name})
    finally:
        await db.disconnect()
