"""Remote keys are cached in each process's memory (keys/cache.py), and a change handled by one
process reaches the other processes' caches: two real node processes of ONE node (same base
URL, same database, each on its own port), a real peer whose actor rotates its key or is
deleted. Runs on SQLite and, with ENTRAIDE_TEST_DB=postgres, on PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from activitypub.signatures import SigningKey, sign_request
from activitypub.vocab import ACTIVITY_JSON, PUBLIC
from keys.keypair import generate_keypair
from tests.nodes import NodeProcess
from tests.peers import PeerActor, RemotePeer, free_port

pytestmark = pytest.mark.e2e

HOST = "127.0.19.10"
PEER_HOST = "127.0.19.11"
AS = "https://www.w3.org/ns/activitystreams"


class TwoProcesses:
    """Process A answers on the node's own address; process B is the same node (same base URL
    and database) bound to another port, as a second machine behind a load balancer."""

    def __init__(self, tmp: Path) -> None:
        self.a = NodeProcess(tmp / "a", host=HOST)
        self.b_port = free_port(HOST)
        self.b = NodeProcess(tmp / "b", host=HOST, port=self.a.port,
                             database_url=self.a.database_url, NODE_BIND_PORT=str(self.b_port))

    def start(self) -> None:
        self.a.start()
        self.b.start()  # its readiness check asks A's address: wait for B's own port too
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://{HOST}:{self.b_port}/.well-known/nodeinfo", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"process B did not start:\n{self.b.log()}")

    def post(self, process: str, key: SigningKey, activity: dict) -> httpx.Response:
        """POST a signed activity to the shared inbox through process 'a' or 'b'."""
        inbox = f"{self.a.base}/inbox"
        body = json.dumps(activity).encode()
        headers = sign_request("POST", inbox, key, body=body,
                               headers={"Content-Type": ACTIVITY_JSON})
        port = self.a.port if process == "a" else self.b_port
        return httpx.post(f"http://{HOST}:{port}/inbox", content=body, headers=headers,
                          timeout=10)

    def close(self) -> None:
        self.b.stop()
        self.a.close()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[TwoProcesses]:
    pair = TwoProcesses(tmp_path)
    pair.start()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def peer() -> Iterator[RemotePeer]:
    remote = RemotePeer(PEER_HOST)
    remote.add_actor("ana")
    remote.start()
    yield remote
    remote.stop()


def create(peer: RemotePeer, actor: PeerActor, org_uri: str) -> dict:
    note = f"{peer.base}/notes/{uuid.uuid4().hex}"
    return {"@context": AS, "id": f"{note}/activity", "type": "Create", "actor": actor.uri,
            "to": [PUBLIC], "cc": [org_uri],
            "object": {"id": note, "type": "Note", "attributedTo": actor.uri, "to": [PUBLIC],
                       "cc": [org_uri], "content": "<p>Une soupe pour ce soir</p>"}}


def refused_eventually(nodes: TwoProcesses, peer: RemotePeer, actor: PeerActor,
                       key: SigningKey, timeout: float = 15) -> httpx.Response:
    """POST fresh Creates of `actor` signed with `key` through process B until B refuses one
    (or the time is up); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        resp = nodes.post("b", key, create(peer, actor, nodes.a.org_uri))
        if resp.status_code == 401 or time.monotonic() > deadline:
            return resp
        time.sleep(0.2)


def test_a_key_rotated_through_one_process_is_seen_by_the_other(
        nodes: TwoProcesses, peer: RemotePeer) -> None:
    ana = peer.actors["ana"]
    old_key = ana.key
    # B verifies with ana's key: from now on it holds the key in memory.
    for _ in range(2):
        assert nodes.post("b", old_key, create(peer, ana, nodes.a.org_uri)).status_code == 202
    # Ana rotates her key and announces it with an Update (signed with the old one, still
    # valid where it is known), which process A handles.
    rotated = replace(ana, keys=generate_keypair())
    peer.actors["ana"] = rotated
    update = {"@context": AS, "id": peer.activity_id(), "type": "Update", "actor": ana.uri,
              "object": peer.document(rotated)}
    resp = nodes.post("a", old_key, update)
    assert resp.status_code == 202, resp.text
    stored = nodes.a.query("SELECT public_key_pem FROM remote_actors WHERE uri = :u",
                           {"u": ana.uri})
    assert stored == [{"public_key_pem": rotated.keys.public_pem}]

    # B stops trusting the old key it had cached, without being told in any other way.
    resp = refused_eventually(nodes, peer, ana, old_key)
    assert resp.status_code == 401, resp.text
    # And takes the new one.
    resp = nodes.post("b", rotated.key, create(peer, rotated, nodes.a.org_uri))
    assert resp.status_code == 202, resp.text


def test_an_actor_deleted_through_one_process_leaves_every_cache(
        nodes: TwoProcesses, peer: RemotePeer) -> None:
    ana = peer.actors["ana"]
    for process in ("a", "b"):  # both hold ana's key in memory
        resp = nodes.post(process, ana.key, create(peer, ana, nodes.a.org_uri))
        assert resp.status_code == 202, resp.text
    # Ana's account is deleted on her server (its actor answers 404 from now on), and the
    # Delete reaches process A.
    del peer.actors["ana"]
    delete = {"@context": AS, "id": peer.activity_id(), "type": "Delete", "actor": ana.uri,
              "object": ana.uri, "to": [PUBLIC]}
    assert nodes.post("a", ana.key, delete).status_code == 202
    assert nodes.a.query("SELECT uri FROM remote_actors WHERE uri = :u", {"u": ana.uri}) == []

    # Neither process accepts her old key any more: A forgot it at once, B learns it.
    resp = nodes.post("a", ana.key, create(peer, ana, nodes.a.org_uri))
    assert resp.status_code == 401, resp.text
    resp = refused_eventually(nodes, peer, ana, ana.key)
    assert resp.status_code == 401, resp.text
