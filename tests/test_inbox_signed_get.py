"""Signed GETs in both directions (Mastodon's authorized fetch / secure mode).

Our fetches are signed by the instance actor and pass a peer that verifies every GET; with
NODE_AUTHORIZED_FETCH on, our documents are served only to GETs whose signature verifies, while
the instance actor and the HTML pages stay open.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from activitypub.signatures import SigningKey, sign_request
from activitypub.vocab import ACTIVITY_JSON
from node.context import Node
from node.db import now
from tests.conftest import node_settings, running_app
from tests.nodes import NodeProcess
from tests.peers import RemotePeer

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
AP = {"Accept": ACTIVITY_JSON}


# --- our node fetches from a peer that demands signatures, over real sockets ---------------

@pytest.fixture
def strict_peer() -> Iterator[RemotePeer]:
    peer = RemotePeer("127.0.0.3", require_signed_get=True)
    peer.add_actor("food", kind="Group")
    peer.start()
    yield peer
    peer.stop()


@pytest.mark.e2e
def test_follow_by_handle_of_a_peer_in_authorized_fetch_mode(
    tmp_path: Path, strict_peer: RemotePeer
) -> None:
    node = NodeProcess(tmp_path / "a", host="127.0.0.2", org="quartier",
                       NODE_AUTHORIZED_FETCH="1").start()
    try:
        node.login()
        food = strict_peer.actors["food"]
        handle = f"@food@{strict_peer.host_ip}:{strict_peer.port}"
        resp = node.admin_action("follow", target=handle)
        assert resp.status_code == 303, resp.text

        # The actor fetch was signed by our instance actor and verified by the peer.
        assert f"{node.base}/actor#main-key" in strict_peer.verified_get_signers
        follow = strict_peer.wait_for("Follow")[0]
        assert follow["actor"] == node.org_uri and follow["object"] == food.uri
        # The peer checked the POST's signature with a signed GET of our (authorized-fetch)
        # organisation document: our node verified the peer's GET signature to serve it.
        assert all(r.signature_ok for r in strict_peer.received), strict_peer.received

        accept = {"@context": "https://www.w3.org/ns/activitystreams",
                  "id": strict_peer.activity_id(), "type": "Accept", "actor": food.uri,
                  "object": follow}
        assert strict_peer.post(food, f"{node.base}/inbox", accept).status_code == 202
        node.wait_until("SELECT 1 FROM follows WHERE follower_uri = :a AND followee_uri = :b "
                        "AND state = 'accepted'", {"a": node.org_uri, "b": food.uri})

        # Anyone may read the instance actor; the organisation needs a signed GET.
        assert httpx.get(f"{node.base}/actor", headers=AP).status_code == 200
        unsigned = httpx.get(node.org_uri, headers=AP)
        assert unsigned.status_code == 401
        assert "signed" in unsigned.json()["error"]
        signed = strict_peer.signed_get(food, node.org_uri)
        assert signed.status_code == 200 and signed.json()["id"] == node.org_uri
    finally:
        node.close()


# --- our node in authorized-fetch mode, in-process -----------------------------------------

@pytest.fixture
async def secure_node(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    settings = node_settings(tmp_path, database_url, NODE_AUTHORIZED_FETCH="1")
    async with running_app(settings) as (node, client):
        yield node, client


@pytest.fixture
async def peer() -> AsyncIterator[RemotePeer]:
    remote = RemotePeer("127.0.0.3")
    remote.add_actor("ana")
    remote.add_actor("bob")
    await remote.astart()
    yield remote
    await remote.astop()


def _signed(key: SigningKey, path: str, accept: str = ACTIVITY_JSON) -> dict[str, str]:
    return sign_request("GET", BASE + path, key, headers={"Accept": accept})


async def _publish_note(node: Node) -> str:
    uri = f"{BASE}/objects/n1"
    doc = {"id": uri, "type": "Note", "attributedTo": ORG, "content": "<p>Soupe</p>",
           "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    await node.db.execute(
        "INSERT INTO objects (uri, type, attributed_to, local, payload, deleted, published) "
        "VALUES (:u, 'Note', :a, 1, :p, 0, :t)",
        {"u": uri, "a": ORG, "p": json.dumps(doc), "t": now()})
    await node.db.execute(
        "INSERT INTO activities (uri, actor_uri, type, object_uri, public, payload, created_at)"
        " VALUES (:u, :a, 'Create', :o, 1, :p, :t)",
        {"u": f"{BASE}/activities/c1", "a": ORG, "o": uri,
         "p": json.dumps({"id": f"{BASE}/activities/c1", "type": "Create", "object": doc}),
         "t": now()})
    return uri


PROTECTED = ["/groups/voisins", "/groups/voisins/outbox", "/groups/voisins/followers",
             "/groups/voisins/following?page=1", "/objects/n1", "/activities/c1",
             "/actor/followers"]


async def test_signed_gets_pass_and_unsigned_get_401(
    secure_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = secure_node
    await _publish_note(node)
    ana = peer.actors["ana"]
    for path in PROTECTED:
        unsigned = await client.get(path, headers=AP)
        assert unsigned.status_code == 401, path
        assert "missing Signature" in unsigned.json()["error"]
        signed = await client.get(path, headers=_signed(ana.key, path))
        assert signed.status_code == 200, (path, signed.text)
        assert signed.headers["cache-control"].startswith("private"), path
        assert "Signature" in signed.headers["vary"], path
    # Ana's key was fetched once (signed by our instance actor) and then cached.
    assert len(peer.get_log) == 1
    assert peer.get_log[0][1] and f'keyId="{BASE}/actor#main-key"' in peer.get_log[0][1]


async def test_bad_signatures_on_gets_are_refused(
    secure_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    _, client = secure_node
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    forged = SigningKey(ana.key.key_id, bob.keys.private_pem)
    resp = await client.get("/groups/voisins", headers=_signed(forged, "/groups/voisins"))
    assert resp.status_code == 401 and "does not verify" in resp.json()["error"]

    # Signed for another path: the (request-target) does not match.
    resp = await client.get("/groups/voisins/outbox",
                            headers=_signed(ana.key, "/groups/voisins"))
    assert resp.status_code == 401

    # A key nobody serves.
    gone = SigningKey(f"{peer.base}/users/nobody#main-key", ana.keys.private_pem)
    resp = await client.get("/groups/voisins", headers=_signed(gone, "/groups/voisins"))
    assert resp.status_code == 401 and "cannot fetch the signing key" in resp.json()["error"]


async def test_open_documents_in_authorized_fetch_mode(
    secure_node: tuple[Node, httpx.AsyncClient]
) -> None:
    node, client = secure_node
    await _publish_note(node)
    # The instance actor: peers need its key to check our own signed fetches.
    resp = await client.get("/actor", headers=AP)
    assert resp.status_code == 200 and resp.json()["type"] == "Application"
    # Pages for people, and discovery.
    html = {"Accept": "text/html"}
    assert (await client.get("/groups/voisins", headers=html)).status_code == 200
    assert (await client.get("/objects/n1", headers=html)).status_code == 200
    wf = await client.get("/.well-known/webfinger?resource=acct:voisins@127.0.0.1:8999")
    assert wf.status_code == 200
    assert (await client.get("/.well-known/nodeinfo")).status_code == 200


async def test_authorized_fetch_is_off_by_default(
    app_node: tuple[Node, httpx.AsyncClient]
) -> None:
    node, client = app_node
    assert node.settings.authorized_fetch is False
    assert (await client.get("/groups/voisins", headers=AP)).status_code == 200
    assert (await client.get("/groups/voisins/outbox", headers=AP)).status_code == 200


async def test_a_post_needs_a_signed_fetch_for_json_but_its_page_stays_open(
    secure_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    from tests.test_posts_pages import NEED, login, member, post_form

    node, client = secure_node
    await member(node, "ana@example.org", person="ana")
    await login(client, "ana@example.org")
    assert (await post_form(client, "need", NEED)).status_code == 303
    path = "/posts/" + await node.db.fetch_val("SELECT id FROM posts")
    client.cookies.clear()
    unsigned = await client.get(path, headers=AP)
    assert unsigned.status_code == 401
    signed = await client.get(path, headers=_signed(peer.actors["ana"].key, path))
    assert signed.status_code == 200 and signed.json()["purpose"] == "request"
    page = await client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and NEED["title"] in page.text
