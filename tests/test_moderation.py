"""Moderation, in one node process against a real RemotePeer on 127.0.0.3: domain and actor
blocks (inbound, fetch, delivery), reports in (`Flag`) and out (forwarded `Flag`), removals that
federate, suspensions, members' own blocks, and every refusal changing nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from activitypub.transport import FetchError
from node.actors import by_username, create_actor
from node.auth import create_user
from node.context import Node
from node.moderation.blocks import hidden_from
from node.notes import publish_note
from node.remote_actors import fetch_actor, resolve_handle
from outbox import queue
from outbox.worker import DeliveryWorker
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.peers import PeerActor, RemotePeer

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
MEMBER_EMAIL = "lea@example.org"
MEMBER_PASSWORD = "a long member password"

TABLES = ("inbox_log", "follows", "reports", "domain_blocks", "actor_blocks", "suspensions",
          "objects", "remote_actors")


@pytest.fixture
async def peer() -> AsyncIterator[RemotePeer]:
    remote = RemotePeer("127.0.0.3")
    remote.add_actor("ana")
    remote.add_actor("bob")
    await remote.astart()
    yield remote
    await remote.astop()


async def counts(node: Node) -> dict[str, int]:
    return {t: int(await node.db.fetch_val(f"SELECT COUNT(*) FROM {t}")) for t in TABLES}


async def login(client: httpx.AsyncClient, email: str, password: str) -> str:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = await client.post("/login", data={"email": email, "password": password,
                                             "csrf_token": token})
    assert resp.status_code == 303, resp.text
    return token


async def csrf(client: httpx.AsyncClient, path: str = "/moderation") -> str:
    page = await client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


async def admin_post(client: httpx.AsyncClient, action: str, **fields: str) -> httpx.Response:
    token = await csrf(client)
    # confirm: removing a post asks first otherwise (tests/test_form_safety.py).
    return await client.post(f"/moderation/{action}",
                             data={"csrf_token": token, "confirm": "yes", **fields})


async def deliver_all(node: Node) -> None:
    worker = DeliveryWorker(node)
    for job in await queue.claim(node, worker.id, 50, 30):
        await worker.deliver(job)


def follow(peer: RemotePeer, actor: PeerActor, target: str = ORG) -> dict[str, Any]:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
            "type": "Follow", "actor": actor.uri, "object": target}


async def make_member(node: Node, email: str = MEMBER_EMAIL) -> str:
    actor = await create_actor(node, "Person", email.split("@")[0], "Léa Member")
    return await create_user(node, email, MEMBER_PASSWORD, actor_id=actor.id)


async def test_blocked_domain_no_inbound_no_fetch_no_delivery(app_node, peer):
    node, client = app_node
    ana = peer.actors["ana"]
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    # Known before the block: a follower on that domain, so a delivery is due there.
    await fetch_actor(node, ana.uri)
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :o, 'x', 'accepted', 0)", {"f": ana.uri, "o": ORG})
    resp = await admin_post(client, "block-domain", domain="127.0.0.3", reason="harassment")
    assert resp.status_code == 303
    assert "127.0.0.3" in (await client.get("/moderation")).text
    peer.get_log.clear()

    before = await counts(node)
    resp = await peer.apost(client, ana, f"{ORG}/inbox", follow(peer, ana))
    assert resp.status_code == 403 and "domain" in resp.json()["error"]
    assert await counts(node) == before
    assert peer.get_log == []  # not even the key was fetched

    with pytest.raises(FetchError, match="blocked"):
        await fetch_actor(node, peer.actors["bob"].uri)
    with pytest.raises(FetchError, match="blocked"):
        await resolve_handle(node, f"@bob@127.0.0.3:{peer.port}")
    assert peer.get_log == []

    org = await by_username(node, "voisins", "Group")
    await publish_note(node, org, "Distribution de colis demain")
    await deliver_all(node)
    job = await node.db.fetch_one("SELECT state, last_error FROM deliveries WHERE host = :h",
                                  {"h": f"127.0.0.3:{peer.port}"})
    assert job["state"] == "failed" and "blocked" in job["last_error"]
    assert peer.received == []

    assert (await admin_post(client, "unblock-domain", domain="127.0.0.3")).status_code == 303
    resp = await peer.apost(client, ana, f"{ORG}/inbox", follow(peer, ana))
    assert resp.status_code == 202


@pytest.mark.parametrize("domain, reason", [
    ("", "domain is needed"), ("not a domain!!", "not a domain"), ("a..b", "not a domain"),
    ("127.0.0.1", "own domain"), ("x" * 300 + ".example", "not a domain"),
])
async def test_bad_domain_blocks_are_refused_and_change_nothing(app_node, domain, reason):
    node, client = app_node
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    before = await counts(node)
    resp = await admin_post(client, "block-domain", domain=domain)
    assert resp.status_code == 400 and reason in resp.text
    assert await counts(node) == before


async def test_subdomains_are_blocked_with_their_domain(app_node):
    from node.moderation.domains import block_domain
    from node.policy import is_blocked
    node, _ = app_node
    await block_domain(node, "HTTPS://Spam.Example./path")
    assert await is_blocked(node, "https://a.b.spam.example/users/x")
    assert await is_blocked(node, "spam.example:8443")
    assert not await is_blocked(node, "https://notspam.example/users/x")
    assert not await is_blocked(node, "https://example/users/x")


async def test_node_wide_actor_block(app_node, peer):
    node, client = app_node
    ana, bob = peer.actors["ana"], peer.actors["bob"]
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert (await admin_post(client, "block-actor", actor=ana.uri)).status_code == 303
    before = await counts(node)
    resp = await peer.apost(client, ana, f"{BASE}/inbox", follow(peer, ana))
    assert resp.status_code == 403 and "actor" in resp.json()["error"]
    assert await counts(node) == before
    assert (await peer.apost(client, bob, f"{BASE}/inbox", follow(peer, bob))).status_code == 202
    resp = await admin_post(client, "block-actor", actor="javascript:alert(1)")
    assert resp.status_code == 400


async def test_flag_from_a_remote_server_lands_in_the_queue(app_node, peer):
    node, client = app_node
    ana = peer.actors["ana"]
    org = await by_username(node, "voisins", "Group")
    note = await publish_note(node, org, "Annonce")
    flag = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
            "type": "Flag", "actor": ana.uri, "object": [ORG, note["id"]],
            "content": "<script>alert(1)</script>Spam <b>again</b>"}
    assert (await peer.apost(client, ana, f"{BASE}/inbox", flag)).status_code == 202
    assert (await peer.apost(client, ana, f"{BASE}/inbox", flag)).status_code == 202  # resent
    rows = await node.db.fetch_all("SELECT * FROM reports")
    assert len(rows) == 1
    report = rows[0]
    assert report["reporter_actor_uri"] == ana.uri and report["target_object_uri"] == note["id"]
    assert report["target_actor_uri"] == ORG
    assert "<" not in report["reason"] and "Spam again" in report["reason"]

    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = (await client.get("/moderation")).text
    assert note["id"] in page and "<script>" not in page

    elsewhere = dict(flag, id=peer.activity_id(), object=[f"{peer.base}/users/someone"])
    before = await counts(node)
    resp = await peer.apost(client, ana, f"{BASE}/inbox", elsewhere)
    assert resp.status_code == 422 and "names no account" in resp.json()["error"]
    assert (await counts(node))["reports"] == before["reports"]


async def test_member_report_forwarded_as_flag_by_the_instance_actor(app_node, peer):
    node, client = app_node
    bob = peer.actors["bob"]
    await fetch_actor(node, bob.uri)
    await make_member(node)
    await login(client, MEMBER_EMAIL, MEMBER_PASSWORD)
    token = await csrf(client, "/report")
    before = await counts(node)
    resp = await client.post("/report", data={"csrf_token": token, "target": bob.uri,
                                              "reason": ""})
    assert resp.status_code == 400 and "what is wrong" in resp.text
    resp = await client.post("/report", data={"csrf_token": token,
                                              "target": "https://unknown.example/x",
                                              "reason": "threats"})
    assert resp.status_code == 400 and "knows no post or account" in resp.text
    resp = await client.post("/report", data={"csrf_token": "forged", "target": bob.uri,
                                              "reason": "threats"})
    assert resp.status_code == 403
    assert await counts(node) == before
    resp = await client.post("/report", data={"csrf_token": token, "target": bob.uri,
                                              "reason": "threatening messages"})
    assert resp.status_code == 200 and 'role="status"' in resp.text
    assert (await counts(node))["reports"] == before["reports"] + 1

    # A member cannot reach the moderation queue.
    assert (await client.get("/moderation")).status_code == 403
    assert (await client.post("/moderation/resolve", data={"csrf_token": token})).status_code \
        == 403

    await client.post("/logout", data={"csrf_token": token})
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    report_id = await node.db.fetch_val("SELECT id FROM reports")
    assert "threatening messages" in (await client.get("/moderation")).text
    assert (await admin_post(client, "forward", report=report_id)).status_code == 303
    await deliver_all(node)
    flags = peer.wait_for("Flag")
    assert flags[0]["actor"] == f"{BASE}/actor"  # the reporter stays anonymous
    assert flags[0]["object"] == [bob.uri] and flags[0]["content"] == "threatening messages"
    # Signed by the instance actor (the peer cannot check it: this node is served in-process).
    assert f'keyId="{BASE}/actor#main-key"' in peer.received[0].headers["signature"]
    assert MEMBER_EMAIL not in peer.received[0].body.decode()

    assert (await admin_post(client, "resolve", report=report_id)).status_code == 303
    assert await node.db.fetch_val("SELECT status FROM reports") == "resolved"
    assert (await admin_post(client, "resolve", report="nope")).status_code == 400


async def test_removing_a_local_post_federates_a_delete(app_node, peer):
    node, client = app_node
    ana = peer.actors["ana"]
    await fetch_actor(node, ana.uri)
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :o, 'x', 'accepted', 0)", {"f": ana.uri, "o": ORG})
    org = await by_username(node, "voisins", "Group")
    note = await publish_note(node, org, "Un message à retirer")
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert (await admin_post(client, "remove-post", target=note["id"])).status_code == 303
    assert await node.db.fetch_val("SELECT deleted FROM objects WHERE uri = :u",
                                   {"u": note["id"]}) == 1
    await deliver_all(node)
    deletes = peer.wait_for("Delete")
    assert deletes[0]["object"]["id"] == note["id"] and deletes[0]["actor"] == ORG
    resp = await admin_post(client, "remove-post", target=note["id"])
    assert resp.status_code == 400 and "removed already" in resp.text


async def test_suspended_member_is_signed_out(app_node):
    node, client = app_node
    user_id = await make_member(node)
    member = httpx.AsyncClient(transport=client._transport, base_url=BASE)
    async with member:
        await login(member, MEMBER_EMAIL, MEMBER_PASSWORD)
        assert (await member.get("/blocks")).status_code == 200
        await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        admin_id = await node.db.fetch_val("SELECT id FROM users WHERE role = 'admin'")
        resp = await admin_post(client, "suspend", user=admin_id)
        assert resp.status_code == 400 and "admin" in resp.text
        assert (await admin_post(client, "suspend", user="nobody")).status_code == 400
        assert (await admin_post(client, "suspend", user=user_id, reason="spam")).status_code \
            == 303
        resp = await member.get("/blocks")
        assert resp.status_code == 303 and resp.headers["location"] == "/login"
        assert MEMBER_EMAIL in (await client.get("/moderation")).text
        assert (await admin_post(client, "unsuspend", user=user_id)).status_code == 303
        await login(member, MEMBER_EMAIL, MEMBER_PASSWORD)
        assert (await member.get("/blocks")).status_code == 200


async def test_member_blocks_hide_an_actor_from_them_only(app_node, peer):
    node, client = app_node
    user_id = await make_member(node)
    await login(client, MEMBER_EMAIL, MEMBER_PASSWORD)
    token = await csrf(client, "/blocks")
    ana = peer.actors["ana"].uri
    assert (await client.post("/blocks", data={"csrf_token": token, "actor": ana})).status_code \
        == 303
    assert ana in (await client.get("/blocks")).text
    assert await hidden_from(node, user_id) == {ana}
    assert await hidden_from(node, "someone-else") == set()
    resp = await client.post("/blocks", data={"csrf_token": token, "actor": "not a uri"})
    assert resp.status_code == 400
    resp = await client.post("/blocks", data={"csrf_token": "forged", "actor": ana + "2"})
    assert resp.status_code == 403
    assert await hidden_from(node, user_id) == {ana}
    await client.post("/blocks", data={"csrf_token": token, "actor": ana, "unblock": "1"})
    assert await hidden_from(node, user_id) == set()


async def test_moderation_needs_csrf_and_admin(app_node):
    node, client = app_node
    assert (await client.get("/moderation")).status_code == 303  # to the login page
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    before = await counts(node)
    resp = await client.post("/moderation/block-domain", data={"domain": "spam.example"})
    assert resp.status_code == 403
    resp = await admin_post(client, "no-such-action")
    assert resp.status_code == 404
    assert await counts(node) == before


async def test_an_offer_is_reported_then_withdrawn_through_the_posts_domain(app_node):
    node, client = app_node
    actor = await create_actor(node, "Person", "poster", "Poster")
    user_id = await create_user(node, MEMBER_EMAIL, MEMBER_PASSWORD, actor_id=actor.id)
    org_id = await node.db.fetch_val("SELECT id FROM actors WHERE kind = 'Group'")
    await node.db.execute("INSERT INTO memberships (user_id, org_id, role) "
                          "VALUES (:u, :o, 'member')", {"u": user_id, "o": org_id})
    await login(client, MEMBER_EMAIL, MEMBER_PASSWORD)
    token = await csrf(client, "/posts/new?kind=offer")
    resp = await client.post("/posts/new?kind=offer", data={
        "csrf_token": token, "kind": "offer", "category": "shower", "title": "Warm shower",
        "description": "Shower and towel", "neighbourhood": "Saint-Gilles", "capacity": "2",
        "unit": "one", "urgency": "1", "languages": ["fr"]})
    assert resp.status_code == 303, resp.text
    post = await node.db.fetch_one("SELECT * FROM posts")
    token = await csrf(client, "/report")
    resp = await client.post("/report", data={"csrf_token": token, "target": post["uri"],
                                              "reason": "asks for money"})
    assert resp.status_code == 200
    report = await node.db.fetch_one("SELECT * FROM reports")
    assert report["target_object_uri"] == post["uri"]
    assert report["target_actor_uri"] == post["attributed_to"]

    client.cookies.clear()
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert (await admin_post(client, "remove-post", target=post["uri"])).status_code == 303
    assert await node.db.fetch_val("SELECT status FROM posts") == "withdrawn"
    deletes = await node.db.fetch_all("SELECT payload FROM activities WHERE type = 'Delete'")
    assert any(post["uri"] in d["payload"] for d in deletes)
    resp = await admin_post(client, "remove-post", target=post["uri"])
    assert resp.status_code == 400 and "removed already" in resp.text


@pytest.mark.e2e
def test_two_nodes_forward_a_report_then_one_blocks_the_other(tmp_path):
    """Real processes, real signatures both ways: A forwards a report about B's organisation;
    B's queue gets it from A's instance actor. B then blocks A's domain: A's next delivery is
    refused and nothing of it is stored on B."""
    from tests.nodes import NodeProcess, csrf_from

    a = NodeProcess(tmp_path / "a", host="127.0.0.2", org="quartier").start()
    b = NodeProcess(tmp_path / "b", host="127.0.0.3", org="food").start()
    try:
        a.login()
        b.login()
        assert a.admin_action("follow", target=b.handle).status_code == 303
        a.wait_until("SELECT 1 FROM follows WHERE followee_uri = :b AND state = 'accepted'",
                     {"b": b.org_uri})
        token = csrf_from(a.client.get("/report").text)
        resp = a.client.post("/report", data={"csrf_token": token, "target": b.org_uri,
                                              "reason": "posts phone numbers of people"})
        assert resp.status_code == 200
        report_id = a.query("SELECT id FROM reports")[0]["id"]
        token = csrf_from(a.client.get("/moderation").text)
        resp = a.client.post("/moderation/forward", data={"csrf_token": token,
                                                          "report": report_id})
        assert resp.status_code == 303
        rows = b.wait_until("SELECT * FROM reports")
        assert rows[0]["reporter_actor_uri"] == f"{a.base}/actor"
        assert rows[0]["target_actor_uri"] == b.org_uri
        assert rows[0]["reason"] == "posts phone numbers of people"
        assert "posts phone numbers" in b.client.get("/moderation").text

        token = csrf_from(b.client.get("/moderation").text)
        resp = b.client.post("/moderation/block-domain", data={"csrf_token": token,
                                                               "domain": "127.0.0.2"})
        assert resp.status_code == 303
        creates_before = b.query("SELECT COUNT(*) AS n FROM inbox_log")[0]["n"]
        assert a.admin_action("unfollow", target=b.org_uri).status_code == 303
        a.wait_until("SELECT 1 FROM deliveries WHERE host = :h AND state = 'failed' "
                     "AND last_error LIKE 'HTTP 403%'", {"h": f"{b.host}:{b.port}"})
        assert b.query("SELECT COUNT(*) AS n FROM inbox_log")[0]["n"] == creates_before
        # The Undo was refused, so B still has the follow; its deliveries to A are skipped.
        assert b.query("SELECT COUNT(*) AS n FROM follows")[0]["n"] >= 1
    finally:
        a.close()
        b.close()


async def test_no_fetch_of_any_kind_reaches_a_blocked_domain(app_node, peer):
    """The transport itself refuses a blocked domain, so that every fetch path (actors, keys,
    announced objects, WebFinger) is covered, not only those that check on their own."""
    from activitypub.transport import FetchError
    from node.moderation.domains import block_domain

    node, _ = app_node
    url = peer.document(next(iter(peer.actors.values())))["id"]
    assert (await node.transport.get_json(url, None))["id"] == url
    await block_domain(node, peer.host_ip)
    with pytest.raises(FetchError, match="blocked"):
        await node.transport.get_json(url, None)
    with pytest.raises(FetchError, match="blocked"):
        await node.transport.get_json(f"{peer.base}/.well-known/webfinger?resource=x", None)
