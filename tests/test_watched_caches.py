"""What each process keeps in memory while a generation counter stays put (node/generations.py):
local actors (node/actors.py) and outbox pages (node/routes/actors.py). A change is never
missed by the process that made it, reaches the other processes within the bound, and nothing
a rolled-back transaction read is kept. Runs on SQLite and, with ENTRAIDE_TEST_DB=postgres, on
PostgreSQL; the last test uses a real node with two web workers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from activitypub.vocab import ACTIVITY_JSON
from node import actors as actors_module
from node import generations
from node.actors import by_id, by_username
from node.config import Settings
from node.context import Node
from node.generations import watched_cache
from node.notes import publish_note
from node.organisations import ProfileForm, save_profile
from node.routes import actors as actor_routes
from tests.conftest import node_settings, running_app
from tests.nodes import NodeProcess


def _cache(node: Node) -> generations.WatchedCache:
    return watched_cache(node, "local_actors", "actors", actors_module.ACTORS_HELD)


def _pages(node: Node) -> generations.WatchedCache:
    return watched_cache(node, "outbox", "activities", actor_routes.PAGES_HELD)


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
    assert ("username", "nobody") not in _cache(node).entries  # misses are not held


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
            _cache(node).generation.checked_at -= generations.CHECK_EVERY
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
    monkeypatch.setattr(_cache(node), "max_entries", 1)
    org = await by_username(node, "voisins")
    instance = await by_username(node, "instance")
    assert list(_cache(node).entries.values()) == [instance]
    assert (await by_username(node, "voisins")).id == org.id


def test_the_tables_a_statement_writes_are_named():
    from node.db import _written_tables

    assert _written_tables("UPDATE actors SET name = :n WHERE id = :i") == {"actors"}
    assert _written_tables('DELETE FROM "actors" WHERE "id" = :v') == {"actors"}
    assert _written_tables("INSERT OR IGNORE INTO activities (uri) VALUES (:u)") == {
        "activities"}
    assert _written_tables(
        "INSERT INTO outbox_counts (actor_uri, total) VALUES (:a, 1) "
        "ON CONFLICT (actor_uri) DO UPDATE SET total = outbox_counts.total + 1"
    ) <= {"outbox_counts", "set"}
    assert _written_tables("WITH due AS (SELECT id FROM jobs FOR UPDATE SKIP LOCKED) "
                           "UPDATE jobs SET state = 'x' WHERE id IN (SELECT id FROM due)") \
        >= {"jobs"}
    assert _written_tables("SELECT * FROM actors WHERE username = :u") == frozenset()


async def test_writes_are_counted_per_table_and_for_a_transaction_at_its_end(app_node):
    node, _ = app_node
    db = node.db
    before, posts = db.writes_to("actors"), db.writes_to("posts")
    await _rename(node, "Once")
    assert db.writes_to("actors") == before + 1
    async with db.transaction():
        await _rename(node, "Twice")
        async with db.transaction():  # a savepoint: counted with the outer transaction
            await _rename(node, "Thrice")
        assert db.writes_to("actors") == before + 1  # not yet: nothing is committed
    assert db.writes_to("actors") == before + 2
    assert db.writes_to("posts") == posts


async def test_a_write_elsewhere_costs_the_cache_no_read(app_node):
    """The inbox writes on every request: a lookup after a write to another table answers
    from memory without reading the counter again."""
    node, _ = app_node
    held = await by_username(node, "voisins")
    checked = _cache(node).generation.checked_at
    await node.db.execute("UPDATE cache_generations SET value = value WHERE name = 'none'")
    await node.db.execute("DELETE FROM web_sessions WHERE expires_at < 0")
    assert await by_username(node, "voisins") is held
    assert _cache(node).generation.checked_at == checked


async def _outbox(client, query: str = "") -> dict:
    path = "/groups/voisins/outbox" + (f"?{query}" if query else "")
    answer = await client.get(path, headers={"Accept": ACTIVITY_JSON})
    assert answer.status_code == 200
    return answer.json()


async def test_an_outbox_page_is_served_again_until_its_actor_publishes(app_node):
    node, client = app_node
    org = await by_username(node, "voisins")
    await publish_note(node, org, "First words")
    first, collection = await _outbox(client, "page=true"), await _outbox(client)
    assert await _outbox(client, "page=true") == first  # from memory
    assert [key for key in _pages(node).entries] == [
        (org_uri := node.url("/groups/voisins"), "page=true"), (org_uri, None)]
    note = await publish_note(node, org, "Second words")
    # This process published: the next reads are the new pages, at once.
    newest = await _outbox(client, "page=true")
    assert newest["orderedItems"][0]["object"]["id"] == note["id"]
    assert len(newest["orderedItems"]) == len(first["orderedItems"]) + 1
    assert (await _outbox(client))["totalItems"] == collection["totalItems"] + 1
    assert "@context" not in newest["orderedItems"][0]


async def test_an_outbox_changed_by_another_process_is_served_within_the_bound(
        tmp_path: Path, database_url: str):
    settings: Settings = node_settings(tmp_path, database_url)
    async with running_app(settings) as (node, client):
        other = Node.create(settings)
        await other.start()
        try:
            before = await _outbox(client)
            assert await _outbox(client) == before
            await publish_note(other, await by_username(other, "voisins"), "From elsewhere")
            assert await _outbox(client) == before  # within CHECK_EVERY: from memory
            _pages(node).generation.checked_at -= generations.CHECK_EVERY
            assert (await _outbox(client))["totalItems"] == before["totalItems"] + 1
        finally:
            await other.stop()


@pytest.mark.e2e
def test_two_web_workers_serve_what_another_process_changed(tmp_path: Path):
    """A node with two web workers answers its actor document and outbox from memory; a change
    written by another process (here the test: a rename, then a published activity) reaches
    both workers' answers within the bound."""
    node = NodeProcess(tmp_path / "n", host="127.0.19.20", serve_args=("--workers", "2"))
    node.start()

    def seen(path: str, field: str, count: int = 20) -> set:
        # A new connection per request: the kernel spreads them over both workers.
        return {httpx.get(node.base + path, headers={"Accept": ACTIVITY_JSON},
                          timeout=10).json()[field] for _ in range(count)}

    def until_only(path: str, field: str, value: object) -> None:
        deadline = time.monotonic() + 10
        while seen(path, field) != {value}:
            assert time.monotonic() < deadline, f"a worker kept an old {field} of {path}"
            time.sleep(0.1)

    try:
        actor, outbox = "/groups/voisins", "/groups/voisins/outbox"
        assert seen(actor, "name") == {"Voisins"}
        (total,) = seen(outbox, "totalItems")
        asyncio.run(_change_elsewhere(node.database_url, node.org_uri))
        until_only(actor, "name", "Voisins du quartier")
        until_only(outbox, "totalItems", total + 1)
    finally:
        node.stop()


async def _change_elsewhere(database_url: str, org_uri: str) -> None:
    from node.db import Database, dumps, now

    db = Database(database_url)
    await db.connect()
    try:
        await db.execute("UPDATE actors SET name = 'Voisins du quartier' "
                         "WHERE username = 'voisins'")
        activity = {"id": f"{org_uri}/elsewhere", "type": "Create", "actor": org_uri,
                    "to": ["https://www.w3.org/ns/activitystreams#Public"],
                    "object": {"id": f"{org_uri}/elsewhere/note", "type": "Note"}}
        await db.execute(
            "INSERT INTO activities (uri, actor_uri, type, object_uri, public, payload, "
            "created_at) VALUES (:u, :a, 'Create', :o, 1, :j, :c)",
            {"u": activity["id"], "a": org_uri, "o": activity["object"]["id"],
             "j": dumps(activity), "c": now()})
    finally:
        await db.disconnect()
