"""A member's data: the JSON export holds what the node keeps about them (and no secret);
deleting the account federates a `Delete` of the actor signed with the actor's own key, then
erases that key, and leaves no row anywhere with their email or name."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from activitypub.signatures import parse_signature, verify_request
from node.actors import actor_uri, by_username, create_actor
from node.auth import create_user
from node.context import Node
from node.moderation.account_data import table_columns
from node.notes import publish_note
from node.remote_actors import fetch_actor
from outbox import queue
from outbox.worker import DeliveryWorker
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.peers import RemotePeer

BASE = "http://127.0.0.1:8999"
EMAIL = "amina.k@example.org"
NAME = "Amina Kessler-Zed"
PASSWORD = "a long enough password"


@pytest.fixture
async def peer() -> AsyncIterator[RemotePeer]:
    remote = RemotePeer("127.0.0.3")
    remote.add_actor("friend")
    await remote.astart()
    yield remote
    await remote.astop()


async def login(client: httpx.AsyncClient, email: str, password: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    resp = await client.post("/login", data={"email": email, "password": password,
                                             "csrf_token": token})
    assert resp.status_code == 303, resp.text


async def token_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/me/delete")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


async def rows_mentioning(node: Node, *needles: str) -> list[tuple[str, str]]:
    """Every (table, column) of the whole schema where one of the needles appears."""
    found = []
    for table, columns in (await table_columns(node)).items():
        for column in columns:
            for needle in needles:
                hit = await node.db.fetch_val(
                    f'SELECT COUNT(*) FROM "{table}" WHERE LOWER("{column}") LIKE :n',
                    {"n": f"%{needle.lower()}%"})
                if hit:
                    found.append((table, column))
    return found


async def member_with_a_follower(node: Node, peer: RemotePeer) -> tuple[str, str]:
    actor = await create_actor(node, "Person", "amk", NAME, summary=f"Contact: {EMAIL}")
    user_id = await create_user(node, EMAIL, PASSWORD, actor_id=actor.id)
    if "display_name" in (await table_columns(node)).get("users", []):
        await node.db.execute("UPDATE users SET display_name = :n WHERE id = :i",
                              {"n": NAME, "i": user_id})
    friend = peer.actors["friend"]
    await fetch_actor(node, friend.uri)
    uri = actor_uri(node, actor)
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :m, :a, 'accepted', 0)",
        {"f": friend.uri, "m": uri, "a": f"{peer.base}/follows/1"})
    await publish_note(node, actor, f"Je peux aider le mardi. {NAME}")
    worker = DeliveryWorker(node)
    for job in await queue.claim(node, worker.id, 50, 30):
        await worker.deliver(job)
    return user_id, uri


async def test_export_holds_the_members_data_and_no_secret(app_node, peer):
    node, client = app_node
    await member_with_a_follower(node, peer)
    await login(client, EMAIL, PASSWORD)
    resp = await client.get("/me/data")
    assert resp.status_code == 200
    assert "attachment" in resp.headers["content-disposition"]
    assert resp.headers["cache-control"] == "no-store"
    data = resp.json()
    tables = data["tables"]
    assert tables["users"][0]["email"] == EMAIL
    assert tables["users"][0]["password_hash"] == "(not exported)"
    assert all(r["private_key_pem"] == "(not exported)" for r in tables["actors"])
    assert any("Je peux aider" in json.dumps(r) for r in tables["objects"])
    assert peer.actors["friend"].uri in json.dumps(tables["follows"])
    assert "argon2" not in resp.text and "PRIVATE KEY" not in resp.text
    # Nobody else's data: the admin's account is not in the member's export.
    assert ADMIN_EMAIL not in resp.text


async def test_deleting_an_account_federates_and_erases_everything(app_node, peer):
    node, client = app_node
    user_id, uri = await member_with_a_follower(node, peer)
    public_pem = (await by_username(node, "amk", "Person")).public_key_pem
    assert await rows_mentioning(node, EMAIL, NAME)  # the search does find them before
    await login(client, EMAIL, PASSWORD)
    token = await token_of(client)

    before = await node.db.fetch_val("SELECT COUNT(*) FROM users")
    for form, status in [({"password": "wrong", "confirm": "yes"}, 400),
                         ({"password": PASSWORD}, 400),
                         ({"password": PASSWORD, "confirm": "yes", "csrf_token": "x"}, 403)]:
        resp = await client.post("/me/delete", data={"csrf_token": token, **form})
        assert resp.status_code == status, resp.text
    assert await node.db.fetch_val("SELECT COUNT(*) FROM users") == before

    peer.received.clear()
    resp = await client.post("/me/delete", data={"csrf_token": token, "password": PASSWORD,
                                                 "confirm": "yes"})
    assert resp.status_code == 303
    assert (await client.get("/me/data")).status_code == 303  # signed out

    # The Delete waits for delivery, so the key is still there; then it goes out, signed.
    actor = await node.db.fetch_one("SELECT * FROM actors WHERE username = 'amk'")
    assert actor["private_key_pem"]
    worker = DeliveryWorker(node)
    for job in await queue.claim(node, worker.id, 50, 30):
        await worker.deliver(job)
    # One Delete per note of theirs (a Tombstone), and the Delete of the actor; all signed.
    deletes = peer.wait_for("Delete", count=2)
    assert all(d["actor"] == uri for d in deletes)
    assert [d["object"] for d in deletes if d["object"] == uri] == [uri]
    assert [d["object"]["type"] for d in deletes if d["object"] != uri] == ["Tombstone"]
    for received in (r for r in peer.received if r.activity["type"] == "Delete"):
        sig = parse_signature(received.headers["signature"])
        assert sig.key_id == f"{uri}#main-key"
        verify_request(sig, "POST", received.path, received.headers, public_pem, received.body)

    actor = await node.db.fetch_one("SELECT * FROM actors WHERE username = 'amk'")
    assert actor["private_key_pem"] == "" and actor["public_key_pem"] == ""
    assert actor["name"] == "" and actor["summary"] == ""
    assert await rows_mentioning(node, EMAIL, NAME, user_id) == []
    assert await node.db.fetch_val("SELECT COUNT(*) FROM objects WHERE attributed_to = :a",
                                   {"a": uri}) == 0
    # The handle stays taken: nobody can sign up as the deleted member's actor.
    assert await by_username(node, "amk") is not None


async def test_admin_cannot_delete_itself(app_node):
    node, client = app_node
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = await token_of(client)
    resp = await client.post("/me/delete", data={"csrf_token": token,
                                                 "password": ADMIN_PASSWORD, "confirm": "yes"})
    assert resp.status_code == 400 and "admin" in resp.text
    assert await node.db.fetch_val("SELECT COUNT(*) FROM users WHERE email = :e",
                                   {"e": ADMIN_EMAIL}) == 1


async def test_deletion_follows_references_across_tables(app_node, peer):
    """Others' words stay even where they hang on the member's rows: a stranger's response to
    the member's post keeps that post as a shell (no title, no author, withdrawn), and the
    admin's message in the member's conversation keeps the member's response as a shell (no
    name, no message, no user). Nothing of the member's is left in them."""
    node, client = app_node
    tables = await table_columns(node)
    if not {"posts", "responses", "conversation_messages"} <= set(tables):
        pytest.skip("the offers-and-needs tables are not in this schema")
    user_id, uri = await member_with_a_follower(node, peer)
    admin_id = await node.db.fetch_val("SELECT id FROM users WHERE role = 'admin'")
    org = f"{BASE}/groups/voisins"

    async def post(post_id: str, author: str) -> None:
        await node.db.execute(
            "INSERT INTO posts (id, uri, org_uri, attributed_to, author_user_id, kind, category, "
            "title, created_at, updated_at) "
            "VALUES (:i, :u, :o, :o, :a, 'offer', 'food', 't', 0, 0)",
            {"i": post_id, "u": f"{BASE}/posts/{post_id}", "o": org, "a": author})

    async def response(resp_id: str, post_id: str, who: str, who_user: str | None) -> None:
        await node.db.execute(
            "INSERT INTO responses (id, post_id, thread_uri, responder_uri, responder_user_id, "
            "responder_name, created_at, updated_at) VALUES (:i, :p, :t, :r, :u, :n, 0, 0)",
            {"i": resp_id, "p": post_id, "t": f"{BASE}/threads/{resp_id}", "r": who,
             "u": who_user, "n": NAME if who_user == user_id else "Other"})

    await post("admins-post", admin_id)
    await post("members-post", user_id)
    await response("members-answer", "admins-post", uri, user_id)
    await response("strangers-answer", "members-post", peer.actors["friend"].uri, None)
    await node.db.execute(
        "INSERT INTO conversation_messages (response_id, sender_uri, sender_user_id, body_html, "
        "created_at) VALUES ('members-answer', :o, :a, '<p>Merci !</p>', 0)",
        {"o": org, "a": admin_id})

    await login(client, EMAIL, PASSWORD)
    resp = await client.post("/me/delete", data={"csrf_token": await token_of(client),
                                                 "password": PASSWORD, "confirm": "yes"})
    assert resp.status_code == 303, resp.text
    posts = {r["id"]: r for r in await node.db.fetch_all("SELECT * FROM posts")}
    assert set(posts) == {"admins-post", "members-post"}
    shell = posts["members-post"]
    assert (shell["title"], shell["author_user_id"], shell["status"]) == ("", None, "withdrawn")
    responses = {r["id"]: r for r in await node.db.fetch_all("SELECT * FROM responses")}
    assert set(responses) == {"members-answer", "strangers-answer"}
    assert responses["strangers-answer"]["responder_name"] == "Other"
    mine = responses["members-answer"]
    assert (mine["responder_name"], mine["responder_user_id"], mine["message_html"]) == (
        "", None, "")
    messages = await node.db.fetch_all("SELECT * FROM conversation_messages")
    assert [(m["body_html"], m["sender_user_id"]) for m in messages] == [
        ("<p>Merci !</p>", admin_id)]
    assert await rows_mentioning(node, EMAIL, NAME, user_id) == []
