"""Discovery and documents as peers read them: WebFinger, host-meta, NodeInfo 2.1, actor
documents, content negotiation, paged OrderedCollections (in-process app, real database).

The tests read one node started once for the module (a node start with its own database is
the expensive part, on PostgreSQL above all); the few that write use rows of their own."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from activitypub.collections import PAGE_SIZE
from node.context import Node
from node.db import now

pytestmark = pytest.mark.asyncio(loop_scope="module")

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
AP = {"Accept": "application/activity+json"}
LD = {"Accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def app_node(module_node: tuple[Node, httpx.AsyncClient]) -> tuple[Node, httpx.AsyncClient]:
    return module_node


async def _webfinger(client: httpx.AsyncClient, resource: str | None) -> httpx.Response:
    url = "/.well-known/webfinger"
    if resource is not None:
        url += "?resource=" + quote(resource, safe="")
    return await client.get(url)


# --- WebFinger -----------------------------------------------------------------------------

async def test_webfinger_acct_with_host_and_port(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    resp = await _webfinger(client, "acct:voisins@127.0.0.1:8999")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/jrd+json")
    jrd = resp.json()
    assert jrd["subject"] == "acct:voisins@127.0.0.1:8999"
    assert ORG in jrd["aliases"]
    selfs = [link for link in jrd["links"] if link["rel"] == "self"]
    assert selfs == [{"rel": "self", "type": "application/activity+json", "href": ORG}]


async def test_webfinger_by_actor_url(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    resp = await _webfinger(client, ORG)
    assert resp.status_code == 200
    assert resp.json()["subject"] == "acct:voisins@127.0.0.1:8999"


async def test_webfinger_instance_actor(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    resp = await _webfinger(client, "acct:127.0.0.1@127.0.0.1:8999")
    assert resp.status_code == 200
    assert resp.json()["links"][-1]["href"] == f"{BASE}/actor"


async def test_webfinger_unknown_is_404(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    for resource in ("acct:nobody@127.0.0.1:8999", "acct:voisins@elsewhere.example",
                     f"{BASE}/groups/nobody", "https://elsewhere.example/users/voisins"):
        resp = await _webfinger(client, resource)
        assert resp.status_code == 404, resource
        assert resp.json()["error"]


async def test_webfinger_missing_or_malformed_resource_is_400(
    app_node: tuple[Node, httpx.AsyncClient]
) -> None:
    _, client = app_node
    for resource in (None, "", "acct:no-host", "voisins"):
        resp = await _webfinger(client, resource)
        assert resp.status_code == 400, resource
        assert resp.json()["error"]


# --- host-meta and NodeInfo ----------------------------------------------------------------

async def test_host_meta(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    resp = await client.get("/.well-known/host-meta")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/xrd+xml")
    assert (f'template="{BASE}/.well-known/webfinger?resource={{uri}}"') in resp.text


async def test_nodeinfo_discovery_and_document(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    links = (await client.get("/.well-known/nodeinfo")).json()["links"]
    assert links == [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                      "href": f"{BASE}/nodeinfo/2.1"}]
    resp = await client.get(links[0]["href"].removeprefix(BASE))
    assert resp.status_code == 200
    assert "nodeinfo.diaspora.software/ns/schema/2.1" in resp.headers["content-type"]
    doc = resp.json()
    assert doc["version"] == "2.1"
    assert doc["software"]["name"] == "entraide"
    assert doc["protocols"] == ["activitypub"]
    assert doc["usage"]["users"]["total"] == 1  # the first admin
    assert isinstance(doc["usage"]["localPosts"], int)
    assert isinstance(doc["openRegistrations"], bool)


# --- actor documents -----------------------------------------------------------------------

async def test_group_actor_document(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    resp = await client.get("/groups/voisins", headers=AP)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/activity+json")
    doc = resp.json()
    assert doc["id"] == ORG
    assert doc["type"] == "Group"
    assert doc["preferredUsername"] == "voisins"
    assert doc["name"] == "Voisins solidaires"
    assert doc["summary"]
    assert doc["url"] == ORG
    for name in ("inbox", "outbox", "followers", "following"):
        assert doc[name] == f"{ORG}/{name}"
    assert doc["endpoints"] == {"sharedInbox": f"{BASE}/inbox"}
    assert doc["publicKey"]["id"] == f"{ORG}#main-key"
    assert doc["publicKey"]["owner"] == ORG
    assert doc["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in resp.text
    assert doc["icon"]["type"] == "Image" and doc["icon"]["url"].startswith(BASE)
    assert doc["manuallyApprovesFollowers"] is False
    assert doc["discoverable"] is True
    assert "https://w3id.org/security/v1" in doc["@context"]


async def test_manually_approving_group_says_so(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    node, client = app_node
    await node.db.execute("UPDATE actors SET manually_approves = 1 WHERE username = 'voisins'")
    try:
        doc = (await client.get("/groups/voisins", headers=AP)).json()
        assert doc["manuallyApprovesFollowers"] is True
    finally:
        await node.db.execute(
            "UPDATE actors SET manually_approves = 0 WHERE username = 'voisins'")


async def test_instance_actor_document(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    # The instance actor answers JSON whatever the Accept header: peers fetch its key blindly.
    for headers in (AP, BROWSER, {}):
        doc = (await client.get("/actor", headers=headers)).json()
        assert doc["id"] == f"{BASE}/actor"
        assert doc["type"] == "Application"
        assert doc["publicKey"]["id"] == f"{BASE}/actor#main-key"
        assert doc["discoverable"] is False


async def test_unknown_actor_is_404(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    for path in ("/groups/nobody", "/users/voisins", "/groups/nobody/outbox"):
        resp = await client.get(path, headers=AP)
        assert resp.status_code == 404, path
        assert resp.json()["error"]


# --- content negotiation -------------------------------------------------------------------

async def test_activitypub_clients_get_json(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    for headers in (AP, LD, {"Accept": "application/json"}):
        resp = await client.get("/groups/voisins", headers=headers)
        assert resp.status_code == 200, headers
        assert resp.headers["content-type"].startswith("application/activity+json"), headers
        assert "Accept" in resp.headers.get("vary", "")
        assert resp.json()["id"] == ORG


async def test_browsers_get_html(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    resp = await client.get("/groups/voisins", headers=BROWSER)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "Voisins solidaires" in resp.text
    assert "@voisins@127.0.0.1:8999" in resp.text


async def test_html_preferred_by_q_value(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    headers = {"Accept": "application/activity+json;q=0.5, text/html"}
    resp = await client.get("/groups/voisins", headers=headers)
    assert resp.headers["content-type"].startswith("text/html")


# --- paged collections ---------------------------------------------------------------------

async def _add_followers(node: Node, count: int) -> list[str]:
    uris = [f"http://peer.example/users/f{i:03d}" for i in range(count)]
    await node.db.execute_many(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', :t)",
        [{"f": u, "e": ORG, "a": f"{u}#follow", "t": now()} for u in uris],
    )
    return uris


async def test_followers_collection_is_paged(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    node, client = app_node
    uris = await _add_followers(node, PAGE_SIZE + 5)
    # A pending request is not a follower yet.
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES ('http://peer.example/users/waiting', :e, 'x', 'pending', :t)",
        {"e": ORG, "t": now()},
    )
    top = (await client.get("/groups/voisins/followers", headers=AP)).json()
    assert top["type"] == "OrderedCollection"
    assert top["id"] == f"{ORG}/followers"
    assert top["totalItems"] == PAGE_SIZE + 5
    assert top["first"] == f"{ORG}/followers?page=1"
    assert top["last"] == f"{ORG}/followers?page=2"
    assert "orderedItems" not in top

    first = (await client.get("/groups/voisins/followers?page=1", headers=AP)).json()
    assert first["type"] == "OrderedCollectionPage"
    assert first["partOf"] == f"{ORG}/followers"
    assert first["next"] == f"{ORG}/followers?page=2"
    assert "prev" not in first
    assert len(first["orderedItems"]) == PAGE_SIZE

    second = (await client.get(first["next"].removeprefix(BASE), headers=AP)).json()
    assert second["prev"] == f"{ORG}/followers?page=1"
    assert "next" not in second
    assert len(second["orderedItems"]) == 5
    assert sorted(first["orderedItems"] + second["orderedItems"]) == sorted(uris)


async def test_empty_and_out_of_range_pages(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    _, client = app_node
    top = (await client.get("/groups/voisins/following", headers=AP)).json()
    assert top["totalItems"] == 0 and top["first"] == top["id"] + "?page=1"
    page = (await client.get("/groups/voisins/following?page=7", headers=AP)).json()
    assert page["orderedItems"] == [] and "next" not in page
    # A page number that is not a positive integer reads as the first page.
    bad = (await client.get("/groups/voisins/following?page=-3", headers=AP)).json()
    assert bad["id"] == f"{ORG}/following?page=1"


async def test_outbox_lists_public_activities_only(
    app_node: tuple[Node, httpx.AsyncClient]
) -> None:
    node, client = app_node
    public = {"@context": "https://www.w3.org/ns/activitystreams",
              "id": f"{BASE}/activities/p1", "type": "Create", "actor": ORG,
              "to": ["https://www.w3.org/ns/activitystreams#Public"],
              "object": {"id": f"{BASE}/objects/p1", "type": "Note", "content": "Soupe"}}
    private = {**public, "id": f"{BASE}/activities/d1", "to": ["http://peer.example/users/a"]}
    for activity, is_public in ((public, 1), (private, 0)):
        await node.db.execute(
            "INSERT INTO activities (uri, actor_uri, type, object_uri, public, payload, "
            "created_at) VALUES (:u, :a, 'Create', :o, :p, :j, :c)",
            {"u": activity["id"], "a": ORG, "o": activity["object"]["id"], "p": is_public,
             "j": json.dumps(activity), "c": now()},
        )
    top = (await client.get("/groups/voisins/outbox", headers=AP)).json()
    assert top["type"] == "OrderedCollection" and top["totalItems"] == 1
    page = (await client.get(top["first"].removeprefix(BASE), headers=AP)).json()
    assert [item["id"] for item in page["orderedItems"]] == [public["id"]]
    assert "@context" not in page["orderedItems"][0]
    assert page["partOf"] == f"{ORG}/outbox"
