"""Two real nodes federate a need from start to end: posted on B by a member, seen on A (which
follows B's organisation), answered by a member of A, accepted on B, a message each way, then
fulfilled — and the status is visible on both nodes."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from node.actors import create_actor
from node.auth import create_user
from node.config import load_settings
from node.context import Node
from tests.nodes import NodeProcess, csrf_from

pytestmark = pytest.mark.e2e
PASSWORD = "long enough password"


def add_member(node: NodeProcess, email: str, username: str) -> str:
    """A member with a Person actor, written straight into the node's database."""

    async def run() -> str:
        settings = load_settings({"NODE_BASE_URL": node.base, "NODE_DATA_DIR": str(node.tmp),
                                  "NODE_DATABASE_URL": node.database_url,
                                  "NODE_SECRET_KEY": "unused"})
        local = Node.create(settings)
        await local.db.connect()
        try:
            person = await create_actor(local, "Person", username, username.title())
            user_id = await create_user(local, email, PASSWORD, actor_id=person.id)
            org = await local.db.fetch_val("SELECT id FROM actors WHERE kind = 'Group'")
            await local.db.execute(
                "INSERT INTO memberships (user_id, org_id, role) VALUES (:u, :o, 'member')",
                {"u": user_id, "o": org})
            return f"{node.base}/users/{username}"
        finally:
            await local.db.disconnect()

    return asyncio.run(run())


def signed_in(node: NodeProcess, email: str) -> httpx.Client:
    client = httpx.Client(base_url=node.base, timeout=10, headers={"Accept-Language": "en"})
    token = csrf_from(client.get("/login").text)
    resp = client.post("/login", data={"email": email, "password": PASSWORD,
                                       "csrf_token": token})
    assert resp.status_code == 303, resp.text
    return client


def post_id_of(location: str) -> str:
    match = re.match(r"/posts/([0-9a-f]+)", location)
    assert match, location
    return match.group(1)


@pytest.fixture
def two_nodes(tmp_path):
    a = NodeProcess(tmp_path / "a", host="127.0.0.4", org="quartier").start()
    b = NodeProcess(tmp_path / "b", host="127.0.0.5", org="refuge").start()
    yield a, b
    a.close()
    b.close()


def test_need_posted_on_b_answered_from_a_fulfilled_on_both(two_nodes):
    a, b = two_nodes
    a.login()
    assert a.admin_action("follow", target=b.handle).status_code == 303
    a.wait_until("SELECT 1 FROM follows WHERE followee_uri = :b AND state = 'accepted'",
                 {"b": b.org_uri})
    author_uri = add_member(b, "author@b.example", "nadia")
    helper_uri = add_member(a, "helper@a.example", "tom")
    author = signed_in(b, "author@b.example")
    helper = signed_in(a, "helper@a.example")

    # B: a member posts a need.
    form = author.get("/posts/new?kind=need")
    resp = author.post("/posts/new?kind=need", data={
        "csrf_token": csrf_from(form.text), "kind": "need", "category": "housing",
        "title": "A bed for two nights", "description": "For a mother and her child.",
        "neighbourhood": "Schaerbeek", "capacity": "2", "unit": "night", "urgency": "3",
        "languages": ["fr", "en"]})
    assert resp.status_code == 303, resp.text
    b_id = post_id_of(resp.headers["location"])
    post_uri = f"{b.base}/posts/{b_id}"

    # A: the post arrives (Create from the member, Announce from the group) and is listed.
    row = a.wait_until("SELECT * FROM posts WHERE uri = :u", {"u": post_uri})[0]
    assert row["remote"] == 1 and row["org_uri"] == b.org_uri
    assert row["attributed_to"] == author_uri and row["category"] == "housing"
    a_id = row["id"]
    network = helper.get("/posts?scope=network").text
    assert f"/posts/{a_id}" in network and f"127.0.0.5:{b.port}" in network

    # A: a member responds; B records the response (FEP-0837 Offer + private Note).
    page = helper.get(f"/posts/{a_id}")
    resp = helper.post(f"/posts/{a_id}/respond", data={
        "csrf_token": csrf_from(page.text), "message": "We have a spare room in Evere."})
    assert resp.status_code == 303, resp.text
    conversation_a = resp.headers["location"]
    response_b = b.wait_until(
        "SELECT * FROM responses WHERE responder_uri = :h AND offer_uri IS NOT NULL "
        "AND message_html LIKE :m", {"h": helper_uri, "m": "%spare room%"})[0]
    # The handler may still be finishing (notifications) when the response row appears.
    b.wait_until("SELECT 1 FROM inbox_log WHERE type = 'Offer' AND status = 'processed'")
    offers = b.query("SELECT status FROM inbox_log WHERE type = 'Offer'")
    assert offers == [{"status": "processed"}]

    # B: the author sees the response and accepts it; A learns it (Accept{Offer}).
    listing = author.get(f"/posts/{b_id}/responses")
    assert "We have a spare room in Evere." in listing.text
    resp = author.post(f"/responses/{response_b['id']}/accept",
                       data={"csrf_token": csrf_from(listing.text)})
    assert resp.status_code == 303, resp.text
    a.wait_until("SELECT 1 FROM responses WHERE responder_uri = :h AND status = 'accepted'",
                 {"h": helper_uri})
    # In words too, in the post's language (A's member names none on their actor).
    a.wait_until("SELECT 1 FROM conversation_messages WHERE body_html LIKE :m",
                 {"m": "%a été acceptée%"})
    # The need takes two: still open on both nodes, B says one more person is needed.
    assert "1 more person needed" in author.get(f"/posts/{b_id}").text
    assert a.query("SELECT status FROM posts WHERE id = :i", {"i": a_id}) == [
        {"status": "open"}]

    # A private message each way, shown on both sides' conversation pages.
    conv = author.get(f"/responses/{response_b['id']}")
    author.post(f"/responses/{response_b['id']}", data={
        "csrf_token": csrf_from(conv.text), "message": "Thank you, come on Monday."})
    a.wait_until("SELECT 1 FROM conversation_messages WHERE body_html LIKE :m",
                 {"m": "%on Monday%"})
    conv = helper.get(conversation_a)
    assert "Thank you, come on Monday." in conv.text
    helper.post(conversation_a, data={"csrf_token": csrf_from(conv.text),
                                      "message": "See you Monday."})
    b.wait_until("SELECT 1 FROM conversation_messages WHERE body_html LIKE :m",
                 {"m": "%See you Monday%"})
    assert "See you Monday." in author.get(f"/responses/{response_b['id']}").text

    # B undoes the acceptance (Undo{Accept}): pending again on A; then declines it with a note.
    page = author.get(f"/responses/{response_b['id']}/undo")
    assert author.post(f"/responses/{response_b['id']}/undo", data={
        "csrf_token": csrf_from(page.text), "confirm": "yes"}).status_code == 303
    a.wait_until("SELECT 1 FROM responses WHERE responder_uri = :h AND status = 'pending'",
                 {"h": helper_uri})
    page = author.get(f"/responses/{response_b['id']}/decline")
    assert author.post(f"/responses/{response_b['id']}/decline", data={
        "csrf_token": csrf_from(page.text), "confirm": "yes",
        "note": "Sorry, plans changed."}).status_code == 303
    a.wait_until("SELECT 1 FROM responses WHERE responder_uri = :h AND status = 'declined'",
                 {"h": helper_uri})
    a.wait_until("SELECT 1 FROM conversation_messages WHERE body_html LIKE :m",
                 {"m": "%plans changed%"})
    conv = helper.get(conversation_a).text
    assert "Sorry, plans changed." in conv and "Nadia" in conv

    # B: fulfilled; the Update reaches A; both show it fulfilled and out of the open lists.
    page = author.get(f"/posts/{b_id}")
    resp = author.post(f"/posts/{b_id}/status", data={"csrf_token": csrf_from(page.text),
                                                      "action": "fulfil", "confirm": "yes"})
    assert resp.status_code == 303, resp.text
    a.wait_until("SELECT 1 FROM posts WHERE id = :i AND status = 'fulfilled'", {"i": a_id})
    assert "Fulfilled" in author.get(f"/posts/{b_id}").text
    assert "Fulfilled" in helper.get(f"/posts/{a_id}").text
    assert f"/posts/{a_id}" not in helper.get("/posts").text
    assert f"/posts/{b_id}" not in author.get("/posts").text
    # Nothing private went out publicly: the conversation is not in B's public outbox.
    outbox = b.query("SELECT payload FROM activities WHERE public = 1")
    assert not any("spare room" in r["payload"] or "Monday" in r["payload"] for r in outbox)
    author.close()
    helper.close()
