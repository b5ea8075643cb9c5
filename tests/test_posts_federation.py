"""Offers and needs meet the fediverse, inside one process: a real RemotePeer (uvicorn on a
loopback address, real keys and signatures) plays a Mastodon user and another node's
organisation. Replies become responses, Offers (both shapes) too, answers go back, and the
posts of a followed organisation are kept, updated and withdrawn — only by their author."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from activitypub.vocab import PUBLIC
from node.context import Node
from node.db import now
from node.posts import wire
from tests.peers import PeerActor, RemotePeer
from tests.test_posts_pages import NEED, csrf, login, member, post_form

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
INBOX = f"{BASE}/inbox"


@pytest.fixture
async def peer() -> AsyncIterator[RemotePeer]:
    remote = RemotePeer("127.0.0.6")
    remote.add_actor("mastodon_user")
    remote.add_actor("other_node_member")
    remote.add_actor("refuge", kind="Group")
    await remote.astart()
    yield remote
    await remote.astop()


def create(peer: RemotePeer, actor: PeerActor, obj: dict[str, Any]) -> dict[str, Any]:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
            "type": "Create", "actor": actor.uri, "object": obj,
            "to": obj.get("to", []), "cc": obj.get("cc", [])}


async def our_need(node: Node, client: httpx.AsyncClient) -> dict:
    await member(node, "author@example.org", person="nadia")
    await login(client, "author@example.org")
    assert (await post_form(client, "need", NEED)).status_code == 303
    return await node.db.fetch_one("SELECT * FROM posts")


async def deliveries_to(node: Node, peer: RemotePeer) -> list[dict]:
    rows = await node.db.fetch_all(
        "SELECT a.payload FROM deliveries d JOIN activities a ON a.uri = d.activity_uri "
        "WHERE d.inbox_url = :i ORDER BY a.seq", {"i": f"{peer.base}/inbox"})
    return [json.loads(r["payload"]) for r in rows]


async def test_a_direct_mastodon_reply_is_a_private_response(app_node, peer):
    node, client = app_node
    post = await our_need(node, client)
    user = peer.actors["mastodon_user"]
    reply = {"id": f"{peer.base}/statuses/1", "type": "Note", "attributedTo": user.uri,
             "inReplyTo": post["uri"], "content": "<p>@nadia I can host them</p>",
             "to": [f"{BASE}/users/nadia"], "cc": [],
             "tag": [{"type": "Mention", "href": f"{BASE}/users/nadia"}]}
    resp = await peer.apost(client, user, INBOX, create(peer, user, reply))
    assert resp.status_code == 202, resp.text
    response = await node.db.fetch_one("SELECT * FROM responses")
    assert response["responder_uri"] == user.uri and response["public"] == 0
    assert "I can host them" in response["message_html"] and response["offer_uri"] is None
    # Private: neither stored as a public object nor shown on the post page.
    assert await node.db.fetch_val("SELECT COUNT(*) FROM objects WHERE uri = :u",
                                   {"u": reply["id"]}) == 0
    client.cookies.clear()
    assert "I can host them" not in (await client.get(f"/posts/{post['id']}")).text
    await login(client, "author@example.org")
    assert "I can host them" in (await client.get(f"/posts/{post['id']}/responses")).text
    # No message asking to go private: it already is.
    assert await deliveries_to(node, peer) == []

    # Accepting it tells the Mastodon user in words (Mastodon ignores Accept{Offer}).
    page = await client.get(f"/posts/{post['id']}/responses")
    resp = await client.post(f"/responses/{response['id']}/accept",
                             data={"csrf_token": csrf(page)})
    assert resp.status_code == 303
    sent = await deliveries_to(node, peer)
    notes = [a for a in sent if a["type"] == "Create"]
    assert len(notes) == 1 and notes[0]["object"]["to"] == [user.uri]
    assert notes[0]["object"]["inReplyTo"] == reply["id"]
    # In the post's language (the Mastodon actor names none): French here.
    assert "a été acceptée" in notes[0]["object"]["content"]
    assert notes[0]["object"]["contentMap"] == {"fr": notes[0]["object"]["content"]}
    assert PUBLIC not in notes[0]["object"]["to"] + notes[0]["object"]["cc"]

    # Their answer in the same thread lands in the conversation.
    answer = {"id": f"{peer.base}/statuses/2", "type": "Note", "attributedTo": user.uri,
              "inReplyTo": notes[0]["object"]["id"], "content": "<p>Great, Monday?</p>",
              "to": [f"{BASE}/users/nadia"]}
    assert (await peer.apost(client, user, INBOX, create(peer, user, answer))).status_code == 202
    conv = await client.get(f"/responses/{response['id']}")
    assert "Great, Monday?" in conv.text


async def test_a_public_reply_is_recorded_and_its_author_asked_to_reply_privately(
    app_node, peer
):
    node, client = app_node
    post = await our_need(node, client)
    user = peer.actors["mastodon_user"]
    reply = {"id": f"{peer.base}/statuses/3", "type": "Note", "attributedTo": user.uri,
             "inReplyTo": post["uri"], "content": "<p>Me! Call 0470 00 00 00</p>",
             "to": [PUBLIC], "cc": [f"{user.uri}/followers"]}
    assert (await peer.apost(client, user, INBOX, create(peer, user, reply))).status_code == 202
    response = await node.db.fetch_one("SELECT * FROM responses")
    assert response["public"] == 1
    sent = await deliveries_to(node, peer)
    assert len(sent) == 1 and sent[0]["type"] == "Create"
    note = sent[0]["object"]
    assert note["to"] == [user.uri] and "en privé" in note["content"]
    assert {"type": "Mention", "href": user.uri,
            "name": f"@mastodon_user@127.0.0.6:{peer.port}"} in note["tag"]
    # Still not shown publicly on our post page.
    client.cookies.clear()
    assert "0470" not in (await client.get(f"/posts/{post['id']}")).text


async def test_offers_in_both_shapes_become_responses_and_get_answers(app_node, peer):
    node, client = app_node
    post = await our_need(node, client)
    current, older = peer.actors["other_node_member"], peer.actors["mastodon_user"]
    offer = wire.offer(f"{peer.base}/responses/r1/offer", current.uri, post["uri"],
                       post["attributed_to"], [post["attributed_to"]], "<p>Room in Evere</p>")
    offer["context"] = f"{peer.base}/responses/r1"
    assert (await peer.apost(client, current, INBOX, offer)).status_code == 202
    old_shape = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
                 "type": "Offer", "actor": older.uri, "inReplyTo": post["uri"],
                 "object": {"type": "Commitment", "provider": older.uri},
                 "content": "<p>Sofa bed</p>", "to": [post["attributed_to"]]}
    assert (await peer.apost(client, older, INBOX, old_shape)).status_code == 202
    rows = {r["responder_uri"]: r for r in await node.db.fetch_all("SELECT * FROM responses")}
    assert rows[current.uri]["offer_uri"] == offer["id"]
    assert rows[current.uri]["thread_uri"] == offer["context"]
    assert rows[older.uri]["offer_uri"] == old_shape["id"]

    # The private Note of the same response joins it (same thread), not a second response.
    note = wire.private_note(f"{peer.base}/responses/r1/messages/1", current.uri,
                             post["attributed_to"], post["uri"], "<p>Room in Evere</p>",
                             offer["context"])
    assert (await peer.apost(client, current, INBOX, create(peer, current, note))).status_code \
        == 202
    assert await node.db.fetch_val("SELECT COUNT(*) FROM responses") == 2

    page = await client.get(f"/posts/{post['id']}/responses")
    resp = await client.post(f"/responses/{rows[current.uri]['id']}/accept",
                             data={"csrf_token": csrf(page)})
    assert resp.status_code == 303
    sent = {a["type"]: a for a in await deliveries_to(node, peer)
            if a["type"] in ("Accept", "Reject")}
    assert sent["Accept"]["object"] == offer["id"]
    assert sent["Accept"]["result"]["type"] == "Agreement"
    # The need takes two helpers: the other response still waits (tests/test_capacity.py).
    assert "Reject" not in sent
    resp = await client.post(f"/responses/{rows[older.uri]['id']}/accept",
                             data={"csrf_token": csrf(page)})
    assert resp.status_code == 303
    accepts = [a for a in await deliveries_to(node, peer) if a["type"] == "Accept"]
    assert {a["object"] for a in accepts} == {offer["id"], old_shape["id"]}
    # Accepting a second time is refused with a reason and changes nothing.
    resp = await client.post(f"/responses/{rows[older.uri]['id']}/accept",
                             data={"csrf_token": csrf(page)})
    assert resp.status_code == 400 and "Every place is taken" in resp.text


async def test_an_offer_for_something_we_do_not_have_is_ignored(app_node, peer):
    node, client = app_node
    actor = peer.actors["other_node_member"]
    offer = wire.offer(f"{peer.base}/o/1", actor.uri, f"{BASE}/posts/nope", ORG, [ORG], "")
    assert (await peer.apost(client, actor, INBOX, offer)).status_code == 202
    assert await node.db.fetch_val("SELECT COUNT(*) FROM responses") == 0
    not_embedded = {**offer, "id": f"{peer.base}/o/2", "object": f"{peer.base}/agreements/1"}
    assert (await peer.apost(client, actor, INBOX, not_embedded)).status_code == 422


def remote_post(peer: RemotePeer, group: PeerActor, author: PeerActor, **changes) -> dict:
    post = {"id": "r1", "uri": f"{peer.base}/posts/r1", "url": f"{peer.base}/posts/r1",
            "kind": "offer", "category": "food", "title": "Soup tonight",
            "description_html": "<p>Hot soup for 20</p>", "neighbourhood": "Forest",
            "latitude": 50.81, "longitude": 4.32, "starts_at": None, "ends_at": now() + 86400,
            "capacity": 20, "unit": "meal", "urgency": 1, "languages": "fr",
            "visibility": "public", "status": "open", "created_at": now(),
            "updated_at": now()}
    post.update(changes)
    return wire.to_note(post, wire.Addressing(author.uri, group.uri), peer.base)


async def test_posts_of_a_followed_organisation_are_kept_updated_and_withdrawn(app_node, peer):
    node, client = app_node
    group, author = peer.actors["refuge"], peer.actors["other_node_member"]
    note = remote_post(peer, group, author)
    # Not followed yet: nothing kept.
    assert (await peer.apost(client, author, INBOX, create(peer, author, note))).status_code \
        == 202
    assert await node.db.fetch_val("SELECT COUNT(*) FROM posts") == 0
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', :t)",
        {"f": ORG, "e": group.uri, "a": f"{BASE}/activities/f1", "t": now()})
    second = create(peer, author, note)
    assert (await peer.apost(client, author, INBOX, second)).status_code == 202
    post = await node.db.fetch_one("SELECT * FROM posts")
    assert post["remote"] == 1 and post["title"] == "Soup tonight" and post["unit"] == "meal"
    listing = (await client.get("/posts?scope=network")).text
    assert f"/posts/{post['id']}" in listing and "127.0.0.6" in listing
    assert f"/posts/{post['id']}" not in (await client.get("/posts?scope=local")).text

    # Someone else cannot close it.
    intruder = peer.actors["mastodon_user"]
    fake = remote_post(peer, group, author, status="fulfilled")
    update = {**create(peer, intruder, fake), "type": "Update"}
    assert (await peer.apost(client, intruder, INBOX, update)).status_code == 422
    assert await node.db.fetch_val("SELECT status FROM posts") == "open"

    # Its author closes it: fulfilled here too, out of the list, still visible.
    closed = remote_post(peer, group, author, status="fulfilled")
    update = {**create(peer, author, closed), "type": "Update"}
    assert (await peer.apost(client, author, INBOX, update)).status_code == 202
    assert await node.db.fetch_val("SELECT status FROM posts") == "fulfilled"
    assert f"/posts/{post['id']}" not in (await client.get("/posts")).text
    assert "Fulfilled" in (await client.get(f"/posts/{post['id']}",
                                            headers={"Accept-Language": "en"})).text

    # Deleted by its author: withdrawn.
    delete = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
              "type": "Delete", "actor": author.uri,
              "object": {"id": note["id"], "type": "Tombstone"}}
    assert (await peer.apost(client, author, INBOX, delete)).status_code == 202
    assert await node.db.fetch_val("SELECT status FROM posts") == "withdrawn"


async def test_a_group_cannot_relay_a_post_forged_for_another_host(app_node, peer):
    node, client = app_node
    group = peer.actors["refuge"]
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', :t)",
        {"f": ORG, "e": group.uri, "a": f"{BASE}/activities/f2", "t": now()})
    forged = remote_post(peer, group, group)
    forged["id"] = forged["url"] = "http://127.0.0.9:1/posts/forged"
    forged["attributedTo"] = forged["audience"] = "http://127.0.0.9:1/groups/x"
    announce = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
                "type": "Announce", "actor": group.uri, "object": forged, "to": [PUBLIC]}
    await peer.apost(client, group, INBOX, announce)
    assert await node.db.fetch_val("SELECT COUNT(*) FROM posts") == 0


async def test_closed_or_unpublished_posts_take_no_response_from_outside(app_node, peer):
    node, client = app_node
    await member(node, "author@example.org")
    await login(client, "author@example.org")
    assert (await post_form(client, "need", {**NEED, "visibility": "local"})).status_code == 303
    assert (await post_form(client, "need", {**NEED, "title": "Done"})).status_code == 303
    local_only = await node.db.fetch_one("SELECT * FROM posts WHERE visibility = 'local'")
    done = await node.db.fetch_one("SELECT * FROM posts WHERE title = 'Done'")
    page = await client.get(f"/posts/{done['id']}")
    await client.post(f"/posts/{done['id']}/status",
                      data={"csrf_token": csrf(page), "action": "withdraw", "confirm": "yes"})
    actor = peer.actors["other_node_member"]
    for n, post in enumerate((local_only, done)):
        offer = wire.offer(f"{peer.base}/o/{n}", actor.uri, post["uri"], ORG, [ORG], "hi")
        assert (await peer.apost(client, actor, INBOX, offer)).status_code == 202
        reply = {"id": f"{peer.base}/statuses/x{n}", "type": "Note", "attributedTo": actor.uri,
                 "inReplyTo": post["uri"], "content": "<p>hi</p>", "to": [ORG]}
        assert (await peer.apost(client, actor, INBOX, create(peer, actor, reply))).status_code \
            == 202
    assert await node.db.fetch_val("SELECT COUNT(*) FROM responses") == 0
    assert await node.db.fetch_val("SELECT COUNT(*) FROM objects WHERE in_reply_to IS NOT NULL") \
        == 0
