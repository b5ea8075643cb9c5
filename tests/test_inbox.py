"""The inbox, end to end inside one process: a real RemotePeer (uvicorn on a loopback address)
serves its actors' keys and signs what it posts; the node fetches those keys over HTTP, checks
the signatures and stores what the handlers decide, in a real SQLite (or PostgreSQL) database.

One node serves the whole module (starting a node with a fresh database is the slow part, on
PostgreSQL above all); before each test the tables the inbox writes are emptied.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from activitypub.signatures import SigningKey, sign_request
from activitypub.vocab import ACTIVITY_JSON, PUBLIC
from node.context import Node
from node.db import now
from tests.conftest import node_settings, running_app
from tests.peers import PeerActor, RemotePeer
from tests.peers import test_keypair as make_keypair

pytestmark = pytest.mark.asyncio(loop_scope="module")

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
ORG_INBOX = f"{ORG}/inbox"
SHARED_INBOX = f"{BASE}/inbox"
LOCAL_NOTE = f"{BASE}/objects/local-note-1"


# What the inbox writes; emptied before each test so that every test starts from a new node's
# state without paying for a new node.
INBOX_TABLES = ("inbox_log", "follows", "objects", "reactions", "deliveries", "activities",
                "remote_actors", "hosts")


@pytest.fixture
def app_node(module_node: tuple[Node, httpx.AsyncClient]) -> tuple[Node, httpx.AsyncClient]:
    return module_node


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def fresh_tables(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    node, _ = app_node
    for table in INBOX_TABLES:
        await node.db.execute(f"DELETE FROM {table}")
    await node.db.execute("UPDATE actors SET manually_approves = 0")


@pytest.fixture
def peer() -> Iterator[RemotePeer]:
    remote = RemotePeer("127.0.0.3")
    remote.add_actor("ana")
    remote.add_actor("bob")
    remote.start()
    yield remote
    remote.stop()


def _activity(peer: RemotePeer, actor: PeerActor, kind: str, obj: Any, **extra: Any) -> dict:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
            "type": kind, "actor": actor.uri, "object": obj, **extra}


def _note(peer: RemotePeer, actor: PeerActor, text: str, **extra: Any) -> dict:
    return {"id": f"{peer.base}/notes/{abs(hash(text))}", "type": "Note",
            "attributedTo": actor.uri, "content": f"<p>{text}</p>", "to": [PUBLIC],
            "cc": [f"{actor.uri}/followers"], "published": "2026-11-20T10:00:00Z", **extra}


async def _count(node: Node, sql: str, values: dict[str, Any] | None = None) -> int:
    return int(await node.db.fetch_val(f"SELECT COUNT(*) FROM {sql}", values or {}) or 0)


async def _follow_row(node: Node, follower: str, followee: str) -> dict | None:
    return await node.db.fetch_one(
        "SELECT * FROM follows WHERE follower_uri = :f AND followee_uri = :e",
        {"f": follower, "e": followee})


async def _we_follow(node: Node, peer_actor: PeerActor, state: str = "accepted") -> str:
    """A follow of the peer's actor by our organisation; returns its Follow activity id."""
    follow_id = f"{BASE}/activities/our-follow-{peer_actor.username}"
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, :s, :t)",
        {"f": ORG, "e": peer_actor.uri, "a": follow_id, "s": state, "t": now()})
    return follow_id


async def _local_note(node: Node) -> None:
    doc = {"id": LOCAL_NOTE, "type": "Note", "attributedTo": ORG, "content": "<p>Soupe</p>",
           "to": [PUBLIC]}
    await node.db.execute(
        "INSERT INTO objects (uri, type, attributed_to, local, payload, deleted, published) "
        "VALUES (:u, 'Note', :a, 1, :p, 0, :t)",
        {"u": LOCAL_NOTE, "a": ORG, "p": json.dumps(doc), "t": now()})


async def _nothing_stored(node: Node) -> None:
    for table in ("inbox_log", "follows", "objects", "reactions", "deliveries"):
        assert await _count(node, table) == 0, table


# --- refusals ------------------------------------------------------------------------------

async def test_unsigned_post_is_refused(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    body = json.dumps(_activity(peer, ana, "Follow", ORG)).encode()
    resp = await client.post(ORG_INBOX, content=body, headers={"Content-Type": ACTIVITY_JSON})
    assert resp.status_code == 401
    assert "Signature" in resp.json()["error"]
    await _nothing_stored(node)


async def test_signature_by_another_key_is_refused(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    forged = SigningKey(ana.key.key_id, peer.actors["bob"].keys.private_pem)
    resp = await peer.apost(client, ana, ORG_INBOX, _activity(peer, ana, "Follow", ORG),
                            key=forged)
    assert resp.status_code == 401
    assert "does not verify" in resp.json()["error"]
    await _nothing_stored(node)


async def test_key_owner_must_be_the_activity_actor(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    # Bob signs, with his own valid key, a Follow that claims to come from Ana.
    resp = await peer.apost(client, ana, ORG_INBOX, _activity(peer, ana, "Follow", ORG),
                            key=bob.key)
    assert resp.status_code == 401
    assert bob.uri in resp.json()["error"] and ana.uri in resp.json()["error"]
    await _nothing_stored(node)


async def test_activity_id_on_another_host_is_refused(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    activity = {**_activity(peer, ana, "Follow", ORG), "id": "https://elsewhere.example/f/1"}
    resp = await peer.apost(client, ana, ORG_INBOX, activity)
    assert resp.status_code == 400
    assert "host" in resp.json()["error"]
    await _nothing_stored(node)


MALFORMED = [
    (b'{"type": "Follow", "id": ', "not valid JSON"),
    (b"\xff\xfe not utf-8", "not valid JSON"),
    # Text no database column can hold, refused at the door rather than failing on storage.
    (b'{"id": "http://x/1", "type": "Note", "actor": "http://x/a", "content": "\\ud800"}',
     "not valid JSON"),
    (b'{"id": "http://x/1", "type": "Note", "actor": "http://x/a", "n": NaN}', "not valid JSON"),
    (b'["Follow"]', "JSON object"),
    (b'{"type": "Follow", "actor": "http://x/a", "object": "y"}', "id"),
    (b'{"id": "http://x/1", "actor": "http://x/a"}', "type"),
    (b'{"id": "http://x/1", "type": "Follow"}', "actor"),
]


async def test_malformed_json_is_refused(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    for body, reason in MALFORMED:
        resp = await peer.apost(client, peer.actors["ana"], ORG_INBOX, body)
        assert resp.status_code == 400, body
        assert reason in resp.json()["error"], body
    await _nothing_stored(node)


async def test_deeply_nested_json_is_refused(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    nested: Any = "x"
    for _ in range(60):
        nested = {"object": nested}
    resp = await peer.apost(client, ana, ORG_INBOX, _activity(peer, ana, "Create", nested))
    assert resp.status_code == 400
    assert "nested" in resp.json()["error"]
    # Deeper than Python's parser recursion limit: still a 400, not a crash.
    body = b'{"id": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = await peer.apost(client, ana, ORG_INBOX, body)
    assert resp.status_code == 400
    await _nothing_stored(node)


async def test_body_over_the_limit_is_refused(
    tmp_path: Path, database_url: str, peer: RemotePeer
) -> None:
    settings = node_settings(tmp_path, database_url, NODE_MAX_INBOX_BYTES="4096")
    async with running_app(settings) as (node, client):
        ana = peer.actors["ana"]
        big = _activity(peer, ana, "Create", _note(peer, ana, "x" * 5000))
        resp = await peer.apost(client, ana, ORG_INBOX, big)
        assert resp.status_code == 413
        assert "4096" in resp.json()["error"]

        # Without a Content-Length (chunked), the limit holds while reading.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 1000

        resp = await client.post(ORG_INBOX, content=chunks(),
                                 headers={"Content-Type": ACTIVITY_JSON})
        assert resp.status_code == 413
        await _nothing_stored(node)


async def test_follow_of_an_actor_we_do_not_have(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    resp = await peer.apost(client, ana, SHARED_INBOX,
                            _activity(peer, ana, "Follow", f"{BASE}/groups/nobody"))
    assert resp.status_code == 422
    assert "does not have" in resp.json()["error"]
    assert await _count(node, "follows") == 0
    assert await _count(node, "deliveries") == 0


async def test_inbox_of_an_unknown_actor_is_404(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    _, client = app_node
    ana = peer.actors["ana"]
    resp = await peer.apost(client, ana, f"{BASE}/groups/nobody/inbox",
                            _activity(peer, ana, "Follow", ORG))
    assert resp.status_code == 404


# --- accepted, ignored, deduplicated -------------------------------------------------------

async def test_unknown_type_is_accepted_and_ignored(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer, caplog: pytest.LogCaptureFixture
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    caplog.set_level(logging.INFO, logger="inbox.receiver")
    activity = _activity(peer, ana, "Listen", "https://music.example/track/1")
    resp = await peer.apost(client, ana, SHARED_INBOX, activity)
    assert resp.status_code == 202
    assert "not handled" in resp.json()["status"]
    row = await node.db.fetch_one("SELECT status FROM inbox_log WHERE activity_id = :i",
                                  {"i": activity["id"]})
    assert row == {"status": "ignored"}
    assert "unknown type 'Listen'" in caplog.text


async def test_follow_is_stored_and_accept_queued_to_shared_inbox(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    follow = _activity(peer, ana, "Follow", ORG)
    resp = await peer.apost(client, ana, ORG_INBOX, follow)
    assert resp.status_code == 202
    row = await _follow_row(node, ana.uri, ORG)
    assert row is not None and row["state"] == "accepted" and row["activity_id"] == follow["id"]

    jobs = await node.db.fetch_all("SELECT activity_uri, inbox_url, state FROM deliveries")
    assert len(jobs) == 1
    assert jobs[0]["inbox_url"] == f"{peer.base}/inbox"  # the follower's shared inbox
    accept = json.loads(await node.db.fetch_val(
        "SELECT payload FROM activities WHERE uri = :u", {"u": jobs[0]["activity_uri"]}))
    assert accept["type"] == "Accept" and accept["actor"] == ORG
    assert accept["object"]["id"] == follow["id"]
    assert accept["object"]["actor"] == ana.uri

    # The same activity again: 202 "already received", and no second Accept.
    again = await peer.apost(client, ana, ORG_INBOX, follow)
    assert again.status_code == 202
    assert again.json()["status"] == "already received"
    assert await _count(node, "deliveries") == 1
    assert await _count(node, "follows") == 1


async def test_manually_approving_group_holds_the_follow_pending(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    await node.db.execute("UPDATE actors SET manually_approves = 1 WHERE username = 'voisins'")
    ana = peer.actors["ana"]
    resp = await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Follow", ORG))
    assert resp.status_code == 202
    row = await _follow_row(node, ana.uri, ORG)
    assert row is not None and row["state"] == "pending"
    assert await _count(node, "deliveries") == 0
    followers = (await client.get("/groups/voisins/followers",
                                  headers={"Accept": ACTIVITY_JSON})).json()
    assert followers["totalItems"] == 0


@pytest.mark.parametrize("embedded", [True, False])
async def test_undo_follow(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer, embedded: bool
) -> None:
    node, client = app_node
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    follow = _activity(peer, ana, "Follow", ORG)
    await peer.apost(client, ana, ORG_INBOX, follow)
    await peer.apost(client, bob, ORG_INBOX, _activity(peer, bob, "Follow", ORG))
    undone = ({k: follow[k] for k in ("id", "type", "actor", "object")} if embedded
              else follow["id"])
    resp = await peer.apost(client, ana, ORG_INBOX, _activity(peer, ana, "Undo", undone))
    assert resp.status_code == 202
    assert await _follow_row(node, ana.uri, ORG) is None
    assert await _follow_row(node, bob.uri, ORG) is not None  # Bob's follow is untouched


async def test_undo_of_someone_elses_follow_changes_nothing(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    follow = _activity(peer, ana, "Follow", ORG)
    await peer.apost(client, ana, ORG_INBOX, follow)
    resp = await peer.apost(client, bob, ORG_INBOX, _activity(peer, bob, "Undo", follow))
    assert resp.status_code == 202
    assert await _follow_row(node, ana.uri, ORG) is not None


# --- answers to our own follows ------------------------------------------------------------

@pytest.mark.parametrize("shape", ["id", "embedded", "embedded-without-our-id"])
async def test_accept_of_our_follow(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer, shape: str
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    follow_id = await _we_follow(node, ana, state="pending")
    obj: Any = follow_id
    if shape == "embedded":
        obj = {"id": follow_id, "type": "Follow", "actor": ORG, "object": ana.uri}
    elif shape == "embedded-without-our-id":
        obj = {"id": f"{peer.base}/their-copy", "type": "Follow", "actor": ORG,
               "object": ana.uri}
    resp = await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Accept", obj))
    assert resp.status_code == 202
    assert (await _follow_row(node, ORG, ana.uri))["state"] == "accepted"


async def test_accept_by_someone_else_does_not_accept(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    follow_id = await _we_follow(node, ana, state="pending")
    resp = await peer.apost(client, bob, SHARED_INBOX, _activity(peer, bob, "Accept", follow_id))
    assert resp.status_code == 202
    assert (await _follow_row(node, ORG, ana.uri))["state"] == "pending"


@pytest.mark.parametrize("embedded", [True, False])
async def test_reject_of_our_follow(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer, embedded: bool
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    follow_id = await _we_follow(node, ana, state="pending")
    obj: Any = ({"id": follow_id, "type": "Follow", "actor": ORG, "object": ana.uri}
                if embedded else follow_id)
    resp = await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Reject", obj))
    assert resp.status_code == 202
    assert await _follow_row(node, ORG, ana.uri) is None


# --- objects -------------------------------------------------------------------------------

async def _object(node: Node, uri: str) -> dict | None:
    return await node.db.fetch_one("SELECT * FROM objects WHERE uri = :u", {"u": uri})


async def test_create_from_a_followed_actor_is_stored(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    await _we_follow(node, ana)
    note = _note(peer, ana, "Repair café samedi <script>alert(1)</script>")
    resp = await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Create", note))
    assert resp.status_code == 202
    row = await _object(node, note["id"])
    assert row is not None and row["local"] == 0 and row["attributed_to"] == ana.uri
    stored = json.loads(row["payload"])
    assert "Repair café samedi" in stored["content_html"]
    assert "<script>" not in stored["content_html"]


async def test_create_from_a_stranger_is_ignored(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    bob = peer.actors["bob"]
    note = _note(peer, bob, "Buy my stuff")
    resp = await peer.apost(client, bob, SHARED_INBOX, _activity(peer, bob, "Create", note))
    assert resp.status_code == 202
    assert await _object(node, note["id"]) is None


async def test_create_of_a_reply_to_a_local_object_is_stored(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    await _local_note(node)
    bob = peer.actors["bob"]
    reply = _note(peer, bob, "Je peux aider", inReplyTo=LOCAL_NOTE)
    resp = await peer.apost(client, bob, SHARED_INBOX, _activity(peer, bob, "Create", reply))
    assert resp.status_code == 202
    row = await _object(node, reply["id"])
    assert row is not None and row["in_reply_to"] == LOCAL_NOTE


async def test_create_attributed_to_someone_else_is_rejected(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    await _we_follow(node, ana)
    note = _note(peer, ana, "Words put in Ana's mouth")
    resp = await peer.apost(client, bob, SHARED_INBOX, _activity(peer, bob, "Create", note))
    assert resp.status_code == 422
    assert await _object(node, note["id"]) is None


async def test_update_of_a_note_only_by_its_author(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    await _we_follow(node, ana)
    note = _note(peer, ana, "Soupe à 19h")
    await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Create", note))

    hijack = {**note, "content": "<p>Cancelled (not really)</p>", "attributedTo": bob.uri}
    resp = await peer.apost(client, bob, SHARED_INBOX, _activity(peer, bob, "Update", hijack))
    assert resp.status_code == 422
    assert "Soupe à 19h" in json.loads((await _object(node, note["id"]))["payload"])["content_html"]

    edited = {**note, "content": "<p>Soupe à 20h</p>", "updated": "2026-11-20T11:00:00Z"}
    resp = await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Update", edited))
    assert resp.status_code == 202
    row = await _object(node, note["id"])
    assert "Soupe à 20h" in json.loads(row["payload"])["content_html"]
    assert row["updated"] is not None


async def test_delete_of_a_note_leaves_a_tombstone(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    await _we_follow(node, ana)
    note = _note(peer, ana, "Vélo à donner")
    await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Create", note))

    resp = await peer.apost(client, bob, SHARED_INBOX, _activity(peer, bob, "Delete", note["id"]))
    assert resp.status_code == 202
    assert (await _object(node, note["id"]))["deleted"] == 0  # not Bob's to delete

    tombstone = {"id": note["id"], "type": "Tombstone"}
    resp = await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Delete", tombstone))
    assert resp.status_code == 202
    row = await _object(node, note["id"])
    assert row["deleted"] == 1
    assert json.loads(row["payload"]) == {"id": note["id"], "type": "Tombstone"}


async def test_delete_of_an_actor_removes_its_follows_and_objects(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    await _local_note(node)
    await peer.apost(client, ana, ORG_INBOX, _activity(peer, ana, "Follow", ORG))
    await _we_follow(node, ana)
    note = _note(peer, ana, "Bientôt parti")
    await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Create", note))
    await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Like", LOCAL_NOTE))
    assert await _count(node, "follows") == 2

    resp = await peer.apost(client, ana, SHARED_INBOX,
                            _activity(peer, ana, "Delete", ana.uri, to=[PUBLIC]))
    assert resp.status_code == 202
    assert await _count(node, "follows") == 0
    assert await _count(node, "reactions") == 0
    assert (await _object(node, note["id"]))["deleted"] == 1
    assert await _count(node, "remote_actors WHERE uri = :u", {"u": ana.uri}) == 0


async def test_delete_of_an_actor_we_never_knew(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    activity = _activity(peer, ana, "Delete", ana.uri)
    del peer.actors["ana"]  # gone at the origin: its key cannot be fetched any more
    resp = await peer.apost(client, ana, SHARED_INBOX, activity)
    assert resp.status_code == 202
    assert "nothing to do" in resp.json()["status"]
    await _nothing_stored(node)


# --- reactions -----------------------------------------------------------------------------

async def _reactions(node: Node, kind: str) -> int:
    return await _count(node, "reactions WHERE type = :t AND object_uri = :o",
                        {"t": kind, "o": LOCAL_NOTE})


@pytest.mark.parametrize("kind", ["Like", "Announce"])
async def test_reaction_to_a_local_object_is_counted_and_undone(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer, kind: str
) -> None:
    node, client = app_node
    await _local_note(node)
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    reaction = _activity(peer, ana, kind, LOCAL_NOTE, to=[PUBLIC])
    assert (await peer.apost(client, ana, SHARED_INBOX, reaction)).status_code == 202
    await peer.apost(client, bob, SHARED_INBOX, _activity(peer, bob, kind, LOCAL_NOTE))
    assert await _reactions(node, kind) == 2

    # Bob cannot undo Ana's reaction; Ana can.
    await peer.apost(client, bob, SHARED_INBOX, _activity(peer, bob, "Undo", reaction))
    assert await _reactions(node, kind) == 2
    resp = await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Undo", reaction))
    assert resp.status_code == 202
    assert await _reactions(node, kind) == 1
    assert await _count(node, "reactions WHERE actor_uri = :a", {"a": ana.uri}) == 0


async def test_undo_of_a_reaction_named_by_id_only(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    await _local_note(node)
    ana = peer.actors["ana"]
    like = _activity(peer, ana, "Like", LOCAL_NOTE)
    await peer.apost(client, ana, SHARED_INBOX, like)
    await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Undo", like["id"]))
    assert await _reactions(node, "Like") == 0


async def test_like_of_a_remote_object_is_not_counted(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    resp = await peer.apost(client, ana, SHARED_INBOX,
                            _activity(peer, ana, "Like", "https://elsewhere.example/notes/1"))
    assert resp.status_code == 202
    assert await _count(node, "reactions") == 0


# --- key rotation --------------------------------------------------------------------------

async def test_key_rotation_refetches_once(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    await _local_note(node)
    ana = peer.actors["ana"]
    assert (await peer.apost(client, ana, SHARED_INBOX,
                             _activity(peer, ana, "Like", LOCAL_NOTE))).status_code == 202
    fetches = len(peer.get_log)
    assert fetches == 1  # the key was fetched once and cached

    ana.keys = make_keypair()
    while ana.keys.public_pem == await node.db.fetch_val(
            "SELECT public_key_pem FROM remote_actors WHERE uri = :u", {"u": ana.uri}):
        ana.keys = make_keypair()
    resp = await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Announce",
                                                                 LOCAL_NOTE))
    assert resp.status_code == 202
    assert len(peer.get_log) == fetches + 1  # exactly one refetch
    assert await node.db.fetch_val(
        "SELECT public_key_pem FROM remote_actors WHERE uri = :u",
        {"u": ana.uri}) == ana.keys.public_pem

    # The next POST verifies against the cached new key, without fetching again.
    resp = await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Undo", {
        "type": "Like", "actor": ana.uri, "object": LOCAL_NOTE}))
    assert resp.status_code == 202
    assert len(peer.get_log) == fetches + 1
    assert await _reactions(node, "Like") == 0


async def test_a_stale_key_that_still_fails_after_refetch_is_refused(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, client = app_node
    ana = peer.actors["ana"]
    old_key = ana.key
    await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Like", LOCAL_NOTE))
    while ana.keys.private_pem == old_key.private_pem:
        ana.keys = make_keypair()
    # The node learns the new key (one refetch), then gets a POST signed with the old one.
    await peer.apost(client, ana, SHARED_INBOX, _activity(peer, ana, "Announce", LOCAL_NOTE))
    fetches = len(peer.get_log)
    body = json.dumps(_activity(peer, ana, "Like", LOCAL_NOTE)).encode()
    headers = sign_request("POST", SHARED_INBOX, old_key, body=body,
                           headers={"Content-Type": ACTIVITY_JSON})
    resp = await client.post(SHARED_INBOX, content=body, headers=headers)
    assert resp.status_code == 401
    assert "does not verify" in resp.json()["error"]
    assert len(peer.get_log) == fetches + 1  # one refetch, then refused
    assert await _count(node, "inbox_log WHERE type = 'Like'") == 1
