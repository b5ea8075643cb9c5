"""The outbox's total is a stored count kept with the activities (migration 17's triggers), and
its pages are named by position (`max_id` / `min_id`, as Mastodon's), so a walk through
`next` or `prev` meets every public activity exactly once, even while new ones are published."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from activitypub.collections import PAGE_SIZE
from node.actors import LocalActor, by_username
from node.context import Node
from outbox.publish import publish

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
OUTBOX = f"{ORG}/outbox"
AP = {"Accept": "application/activity+json"}
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
_numbers = itertools.count()


async def org(node: Node) -> LocalActor:
    actor = await by_username(node, "voisins", "Group")
    assert actor is not None
    return actor


async def publish_one(node: Node, public: bool = True, kind: str = "Create") -> str:
    n = next(_numbers)
    activity = {"@context": "https://www.w3.org/ns/activitystreams",
                "id": f"{BASE}/activities/t{n}", "type": kind, "actor": ORG,
                "to": [PUBLIC] if public else [f"{ORG}/followers"],
                "object": f"{BASE}/objects/t{n}"}
    await publish(node, await org(node), activity)
    return activity["id"]


async def get(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url.removeprefix(BASE), headers=AP)
    assert response.status_code == 200, response.text
    return response.json()


async def total(node: Node, client: httpx.AsyncClient) -> int:
    shown = (await get(client, OUTBOX))["totalItems"]
    counted = await node.db.fetch_val(
        "SELECT COUNT(*) FROM activities WHERE actor_uri = :a AND public = 1", {"a": ORG})
    assert shown == counted
    return shown


async def walk(client: httpx.AsyncClient, url: str, link: str) -> list[list[str]]:
    pages = []
    seen: set[str] = set()
    while url:
        assert url not in seen, f"{url} came back"
        seen.add(url)
        page = await get(client, url)
        assert page["type"] == "OrderedCollectionPage" and page["partOf"] == OUTBOX
        pages.append([item["id"] for item in page["orderedItems"]])
        url = page.get(link)
    return pages


async def test_the_stored_count_follows_publish_and_delete(
    app_node: tuple[Node, httpx.AsyncClient]
) -> None:
    node, client = app_node
    top = await get(client, OUTBOX)
    assert top["totalItems"] == 0 and top["first"] == f"{OUTBOX}?page=true"
    created = [await publish_one(node) for _ in range(3)]
    await publish_one(node, public=False)
    assert await total(node, client) == 3
    deleted = await publish_one(node, kind="Delete")
    assert await total(node, client) == 4
    # Publishing the same activity again stores nothing and counts nothing.
    await publish(node, await org(node), {"id": deleted, "type": "Delete", "actor": ORG,
                                          "to": [PUBLIC], "object": f"{BASE}/objects/x"})
    assert await total(node, client) == 4

    # Rows leave as an account's erasure removes them; a rolled-back removal changes nothing.
    with pytest.raises(RuntimeError):
        async with node.db.transaction():
            await node.db.execute("DELETE FROM activities WHERE actor_uri = :a", {"a": ORG})
            raise RuntimeError("roll back")
    assert await total(node, client) == 4
    await node.db.execute("DELETE FROM activities WHERE uri IN (:x, :y)",
                          {"x": created[0], "y": created[1]})
    assert await total(node, client) == 2
    # An activity made private leaves the count; made public again, it comes back.
    await node.db.execute("UPDATE activities SET public = 0 WHERE uri = :u", {"u": deleted})
    assert await total(node, client) == 1
    await node.db.execute("UPDATE activities SET public = 1 WHERE uri = :u", {"u": deleted})
    assert await total(node, client) == 2
    await node.db.execute("DELETE FROM activities WHERE actor_uri = :a", {"a": ORG})
    assert await total(node, client) == 0
    # Nothing public left: the actor's address is no longer stored beside a count.
    assert await node.db.fetch_val("SELECT COUNT(*) FROM outbox_counts WHERE actor_uri = :a",
                                   {"a": ORG}) == 0


async def test_paging_walks_every_activity_exactly_once(
    app_node: tuple[Node, httpx.AsyncClient]
) -> None:
    node, client = app_node
    public = []
    for n in range(2 * PAGE_SIZE + 7):
        public.append(await publish_one(node))
        if n % 10 == 0:
            await publish_one(node, public=False)
    newest_first = public[::-1]
    top = await get(client, OUTBOX)
    assert top["totalItems"] == len(public)

    forward = await walk(client, top["first"], "next")
    assert [len(p) for p in forward] == [PAGE_SIZE, PAGE_SIZE, 7]
    assert sum(forward, []) == newest_first
    backward = await walk(client, top["last"], "prev")
    assert [len(p) for p in backward] == [PAGE_SIZE, PAGE_SIZE, 7]
    assert sum(backward[::-1], []) == newest_first
    first = await get(client, top["first"])
    assert "prev" not in first and first["orderedItems"][0]["id"] == public[-1]
    assert "@context" not in first["orderedItems"][0]

    # New activities published between two pages shift nothing: the walk goes on where it was.
    next_page = first["next"]
    later = [await publish_one(node) for _ in range(3)]
    rest = await walk(client, next_page, "next")
    assert sum(rest, []) == newest_first[PAGE_SIZE:]
    # Going back: the page just before the second is the first one again, and before it now
    # come the new activities.
    again = await get(client, (await get(client, next_page))["prev"])
    assert [item["id"] for item in again["orderedItems"]] == newest_first[:PAGE_SIZE]
    newest = await get(client, again["prev"])
    assert [item["id"] for item in newest["orderedItems"]] == later[::-1]
    assert "prev" not in newest


async def test_odd_page_addresses_read_as_the_newest_page(
    app_node: tuple[Node, httpx.AsyncClient]
) -> None:
    node, client = app_node
    ids = [await publish_one(node) for _ in range(PAGE_SIZE + 2)]
    for query in ("page=1", "page=5", "page=true", "max_id=abc&page=true",
                  "max_id=99999999999999999999999999&page=true", "min_id=-1&page=true"):
        page = await get(client, f"{OUTBOX}?{query}")
        assert [item["id"] for item in page["orderedItems"]] == ids[::-1][:PAGE_SIZE], query
    empty = await get(client, f"{OUTBOX}?max_id=1&page=true")
    assert empty["orderedItems"] == [] and "next" not in empty and "prev" not in empty
