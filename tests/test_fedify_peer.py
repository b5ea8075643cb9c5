"""Our node against an independent peer built with Fedify (npm `@fedify/fedify`, a strict
TypeScript ActivityPub framework): tests/fedify/peer.mjs runs as a real Node.js server on a
loopback address, next to a real node process.

Fedify verifies the HTTP signature of every POST to its inbox before a listener sees it, and the
peer's actor document is served only to GETs whose signature Fedify verified (authorized fetch),
so every record the peer writes is evidence that our signatures passed a strict verifier. The
other direction is our node's inbox, which refuses what it cannot verify."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.nodes import NodeProcess, csrf_from
from tests.peers import free_port

pytestmark = pytest.mark.e2e

PEER_DIR = Path(__file__).resolve().parent / "fedify"
NODE_BIN = shutil.which("node")

if NODE_BIN is None:
    pytest.skip("Node.js is not installed: the Fedify peer cannot run", allow_module_level=True)
if not (PEER_DIR / "node_modules" / "@fedify" / "fedify").is_dir():
    pytest.skip("tests/fedify/node_modules is missing: run `npm ci --prefix tests/fedify` "
                "(bin/test does it)", allow_module_level=True)


class FedifyPeer:
    """The Fedify server as a subprocess; reads what it recorded and drives its control API."""

    def __init__(self, tmp: Path, host: str) -> None:
        self.port = free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.actor_uri = f"{self.base}/users/alice"
        self.record_path = tmp / "fedify-peer.jsonl"
        self.log_path = tmp / "fedify-peer.log"
        self.record_path.touch()
        env = {**os.environ, "PEER_HOST": host, "PEER_PORT": str(self.port),
               "PEER_RECORD": str(self.record_path)}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([NODE_BIN, "peer.mjs"], cwd=PEER_DIR, env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Fedify peer exited:\n{self.log()}")
            try:
                httpx.get(f"{self.base}/.well-known/nodeinfo", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the Fedify peer did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        lines = self.record_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for(self, kind: str, timeout: float = 20, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.records():
                if rec["kind"] == kind and all(rec.get(k) == v for k, v in match.items()):
                    return rec
            time.sleep(0.1)
        raise AssertionError(f"the peer recorded no {kind} {match}:\n{self.records()}\n"
                             f"{self.log()}")

    def control(self, action: str, **body: str) -> dict[str, Any]:
        resp = httpx.post(f"{self.base}/control/{action}", json=body, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def node_and_peer(tmp_path: Path) -> Iterator[tuple[NodeProcess, FedifyPeer]]:
    node = NodeProcess(tmp_path / "node", host="127.0.0.21", org="voisins").start()
    peer = FedifyPeer(tmp_path, host="127.0.0.22")
    try:
        yield node, peer
    finally:
        peer.close()
        node.close()


def test_fedify_follows_receives_replies_and_likes(node_and_peer) -> None:
    node, peer = node_and_peer
    node.login()

    # The peer finds the organisation by WebFinger (acct:voisins@host:port) and follows it.
    follow = peer.control("follow", handle=node.handle)
    assert follow["target"] == node.org_uri
    assert follow["inbox"] == f"{node.org_uri}/inbox"
    # Fedify read the profile through our JSON-LD context: nothing was lost on the way.
    assert follow["type"] == "Group" and follow["name"] == "Voisins"
    assert follow["summary"].startswith("<p>") and follow["url"] == node.org_uri
    assert follow["icon"] == f"{node.base}/static/icon.png"
    assert follow["published"] and follow["featuredTags"] == f"{node.org_uri}/tags"
    assert [name for name, _ in follow["fields"]] == ["Web", "Needs", "Offers"]
    assert f'href="{node.org_uri}"' in follow["fields"][0][1]
    node.wait_until("SELECT 1 FROM follows WHERE follower_uri = :p AND followee_uri = :o "
                    "AND state = 'accepted'", {"p": peer.actor_uri, "o": node.org_uri})
    accept = peer.wait_for("inbox", type="Accept", actor=node.org_uri)
    assert accept["activity"]["object"]["id"] == follow["id"]

    # To verify the Follow, our node fetched alice with a GET signed by its instance actor,
    # which Fedify checked against our published key before serving the document.
    peer.wait_for("actor-fetch", signedBy=f"{node.base}/actor")

    # The organisation publishes; Fedify accepts the delivery only with a valid signature.
    resp = node.admin_action("note", text="Distribution de colis ce samedi, 10h")
    assert resp.status_code == 303, resp.text
    note_uri = node.query("SELECT uri FROM objects WHERE local = 1")[0]["uri"]
    create = peer.wait_for("inbox", type="Create", actor=node.org_uri)
    received = create["activity"]["object"]
    assert received["id"] == note_uri
    assert received["type"] == "Note"
    assert "Distribution de colis" in received["content"]
    assert received["attributedTo"] == node.org_uri

    # Alice answers; our node verifies Fedify's signature and keeps the reply.
    reply = peer.control("reply", to=node.org_uri, object=note_uri,
                         content="<p>Je peux aider à porter les colis.</p>")
    rows = node.wait_until("SELECT payload FROM objects WHERE uri = :u AND in_reply_to = :n",
                           {"u": reply["id"], "n": note_uri})
    stored = json.loads(rows[0]["payload"])
    assert stored["author"] == peer.actor_uri
    assert "porter les colis" in stored["content_html"]
    # Its row is marked processed just after (the mark waits a moment to share a statement).
    node.wait_until("SELECT 1 FROM inbox_log WHERE actor_uri = :p AND type = 'Create' "
                    "AND status = 'processed'", {"p": peer.actor_uri})
    log = node.query("SELECT status FROM inbox_log WHERE actor_uri = :p AND type = 'Create'",
                     {"p": peer.actor_uri})
    assert [r["status"] for r in log] == ["processed"]

    # Alice's favourite is counted on the note.
    like = peer.control("like", to=node.org_uri, object=note_uri)
    node.wait_until("SELECT 1 FROM reactions WHERE activity_id = :l AND type = 'Like' "
                    "AND object_uri = :n AND actor_uri = :p",
                    {"l": like["id"], "n": note_uri, "p": peer.actor_uri})

    # The organisation withdraws the note: Fedify receives a verified Delete.
    resp = node.admin_action("delete-note", target=note_uri)
    assert resp.status_code == 303, resp.text
    delete = peer.wait_for("inbox", type="Delete", actor=node.org_uri)
    assert delete["activity"]["object"]["id"] == note_uri


NEED = {"kind": "need", "category": "housing", "title": "Un lit pour deux nuits",
        "description": "Une mère et son enfant cherchent un lit.", "neighbourhood": "Saint-Gilles",
        "capacity": "2", "unit": "night", "urgency": "3", "languages": "fr"}


def _need_answered_in_public(node: NodeProcess, peer: FedifyPeer) -> tuple[dict, dict, dict]:
    """Alice follows, a need is posted through the web form, she answers it in public.
    Returns the post row, her public reply and the organisation's private answer."""
    node.login()
    peer.control("follow", handle=node.handle)
    node.wait_until("SELECT 1 FROM follows WHERE follower_uri = :p AND state = 'accepted'",
                    {"p": peer.actor_uri})
    # A coordinator posts a need through the web form; it is the organisation's own.
    token = csrf_from(node.client.get("/posts/new?kind=need").text)
    resp = node.client.post("/posts/new?kind=need", data={"csrf_token": token, **NEED})
    assert resp.status_code == 303, resp.text
    post = node.query("SELECT id, uri FROM posts")[0]
    create = peer.wait_for("inbox", type="Create", actor=node.org_uri)
    note = create["activity"]["object"]
    assert note["id"] == post["uri"] and note["type"] == "Note"
    assert "Un lit pour deux nuits" in note["content"]
    assert {"#need", "#housing", "#SaintGilles"} <= {t["name"] for t in note["tag"]}

    public = peer.control("reply", to=node.org_uri, object=post["uri"],
                          content="<p>J'ai une chambre libre.</p>")
    node.wait_until("SELECT 1 FROM conversation_messages WHERE note_uri = :n",
                    {"n": public["id"]})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        private = next((r["activity"]["object"] for r in peer.records()
                        if r.get("type") == "Create"
                        and r["activity"]["object"].get("inReplyTo") == public["id"]), None)
        if private is not None:
            return post, public, private
        time.sleep(0.1)
    raise AssertionError(f"no private answer reached the peer: {peer.records()}")


def test_fedify_answers_a_new_need_and_the_reply_becomes_a_response(node_and_peer) -> None:
    node, peer = node_and_peer
    post, public, private = _need_answered_in_public(node, peer)

    # Her public reply is a response on the post; the organisation asked her, in a direct
    # message that Fedify verified, to go on privately.
    responses = node.query("SELECT public, responder_uri FROM responses WHERE post_id = :p",
                           {"p": post["id"]})
    assert responses == [{"public": 1, "responder_uri": peer.actor_uri}]
    assert peer.actor_uri in json.dumps(private.get("to"))
    assert "https://www.w3.org/ns/activitystreams#Public" not in json.dumps(private)
    # In the post's language (Fedify's actor names none): French.
    assert "en privé" in private["content"] and private["contentMap"] == {
        "fr": private["content"]}

    # A direct reply (mentioning the organisation only) is a private response, kept out of
    # the public objects.
    direct = peer.control("reply", to=node.org_uri, object=post["uri"], direct="1",
                          content="<p>Appelez-moi au 0470 00 00 00.</p>")
    rows = node.wait_until(
        "SELECT r.public, m.body_html FROM conversation_messages m JOIN responses r "
        "ON r.id = m.response_id WHERE m.note_uri = :n", {"n": direct["id"]})
    assert rows[0]["public"] == 0 and "0470" in rows[0]["body_html"]
    assert node.query("SELECT 1 FROM objects WHERE uri = :u", {"u": direct["id"]}) == []

    # Her answer to the organisation's private message joins that same conversation.
    answer = peer.control("reply", to=node.org_uri, object=private["id"], direct="1",
                          content="<p>Je suis libre dès ce soir.</p>")
    rows = node.wait_until("SELECT response_id FROM conversation_messages WHERE note_uri = :n",
                           {"n": answer["id"]})
    first = node.query("SELECT response_id FROM conversation_messages WHERE note_uri = :n",
                       {"n": public["id"]})
    assert rows[0]["response_id"] == first[0]["response_id"]

    # Her favourite and her boost of the need are counted.
    like = peer.control("like", to=node.org_uri, object=post["uri"])
    boost = peer.control("boost", to=node.org_uri, object=post["uri"])
    for activity_id, kind in ((like["id"], "Like"), (boost["id"], "Announce")):
        node.wait_until("SELECT 1 FROM reactions WHERE activity_id = :a AND type = :t "
                        "AND object_uri = :u", {"a": activity_id, "t": kind, "u": post["uri"]})
    # An edit reaches her as a verified Update of the same Note.
    page = node.client.get(f"/posts/{post['id']}/edit")
    resp = node.client.post(f"/posts/{post['id']}/edit", data={
        "csrf_token": csrf_from(page.text), **NEED, "title": "Un lit pour trois nuits"})
    assert resp.status_code == 303, resp.text
    update = peer.wait_for("inbox", type="Update", actor=node.org_uri)
    assert update["activity"]["object"]["id"] == post["uri"]
    assert "trois nuits" in update["activity"]["object"]["content"]

    # Withdrawn, it reaches her as a Delete.
    page = node.client.get(f"/posts/{post['id']}")
    resp = node.client.post(f"/posts/{post['id']}/status",
                            data={"csrf_token": csrf_from(page.text),
                                  "action": "withdraw", "confirm": "yes"})
    assert resp.status_code == 303
    delete = peer.wait_for("inbox", type="Delete", actor=node.org_uri)
    assert delete["activity"]["object"]["id"] == post["uri"]


def test_fedify_refuses_unsigned_requests_and_so_does_our_node(node_and_peer) -> None:
    """The peer is strict (otherwise its records would prove nothing), and so are we."""
    node, peer = node_and_peer
    activity = {"@context": "https://www.w3.org/ns/activitystreams",
                "id": f"{peer.base}/likes/forged", "type": "Like",
                "actor": peer.actor_uri, "object": node.org_uri}
    body = json.dumps(activity)
    headers = {"Content-Type": "application/activity+json"}

    unsigned_to_peer = httpx.post(f"{peer.base}/inbox", content=body, headers=headers)
    assert unsigned_to_peer.status_code == 401
    assert httpx.get(peer.actor_uri, headers={"Accept": "application/activity+json"}
                     ).status_code == 401
    assert not [r for r in peer.records() if r["kind"] == "inbox"]

    unsigned_to_us = httpx.post(f"{node.org_uri}/inbox", content=body, headers=headers)
    assert unsigned_to_us.status_code == 401
    assert "Signature" in unsigned_to_us.json()["error"]
    assert node.query("SELECT * FROM reactions") == []
    assert node.query("SELECT * FROM inbox_log") == []
