"""People are named on the list of posts and on a post's page: a local member by their display
name (and picture), linking to their profile; a need posted on behalf of someone by the
organisation's name; a remote author by the `name` of their actor (fetched when this node never
saw them) with their organisation's name — never a raw URL, never a bare host."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest

from activitypub.vocab import PUBLIC
from node.db import now
from tests.peers import RemotePeer
from tests.test_posts_federation import remote_post
from tests.test_posts_pages import NEED, PASSWORD, csrf, login, member, post_form

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"


@pytest.fixture
async def peer() -> AsyncIterator[RemotePeer]:
    remote = RemotePeer("127.0.0.144")
    remote.add_actor("refuge", kind="Group", name="Refuge Bruxelles")
    remote.add_actor("amira", name="Amira Haddad")
    await remote.astart()
    yield remote
    await remote.astop()


def bylines(page: httpx.Response) -> list[str]:
    """The text of each byline on a page, tags removed."""
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found)).strip()
            for found in re.findall(r'class="byline">(.*?)</(?:p|dd)>', page.text, re.S)]


async def sign_up(client: httpx.AsyncClient, email: str, name: str) -> None:
    client.headers["Accept-Language"] = "en"
    token = csrf(await client.get("/signup"))
    resp = await client.post("/signup", data={"csrf_token": token, "email": email,
                                              "password": PASSWORD, "confirm": PASSWORD,
                                              "display_name": name})
    assert resp.status_code == 303, resp.text


async def test_a_member_is_named_with_their_picture_and_linked_to_their_profile(app_node):
    node, client = app_node
    await sign_up(client, "nadia@example.org", "Nadia Benali")
    person = await node.db.fetch_one(
        "SELECT a.id, a.username FROM users u JOIN actors a ON a.id = u.actor_id "
        "WHERE u.email = 'nadia@example.org'")
    await node.db.execute("UPDATE actors SET icon_url = :i WHERE id = :a",
                          {"i": f"{BASE}/static/icon.png", "a": person["id"]})
    assert (await post_form(client, "need", NEED)).status_code == 303
    post = await node.db.fetch_one("SELECT * FROM posts")

    for page in (await client.get("/posts"), await client.get(f"/posts/{post['id']}")):
        assert bylines(page) == ["Nadia Benali · Voisins solidaires"]
        assert f'href="{BASE}/users/{person["username"]}" class="author">Nadia Benali' \
            in page.text
        assert f'<img class="avatar" src="{BASE}/static/icon.png"' in page.text
        assert f'href="{ORG}" class="author">Voisins solidaires' in page.text
    # The profile it links to names them too.
    profile = await client.get(f"/users/{person['username']}")
    assert profile.status_code == 200 and "Nadia Benali" in profile.text


async def test_a_need_posted_on_behalf_of_someone_names_the_organisation(app_node):
    node, client = app_node
    await member(node, "coord@example.org", role="coordinator", person="camille")
    await login(client, "coord@example.org")
    fields = {**NEED, "title": "Shopping for Mrs D", "proxied": "1",
              "beneficiary_notes": "Mme Dupont, 0470 12 34 56"}
    assert (await post_form(client, "need", fields)).status_code == 303
    post = await node.db.fetch_one("SELECT * FROM posts")
    for page in (await client.get("/posts"), await client.get(f"/posts/{post['id']}")):
        assert bylines(page) == [
            "Voisins solidaires · on behalf of someone without an account"]
        assert "Camille" not in bylines(page)[0]


async def test_a_remote_author_is_named_by_their_actor_and_organisation(app_node, peer):
    node, client = app_node
    group, amira = peer.actors["refuge"], peer.actors["amira"]
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', :t)",
        {"f": ORG, "e": group.uri, "a": f"{BASE}/activities/f1", "t": now()})
    # The group relays its member's post: the member never wrote to us, so this node has
    # never seen their actor until a page needs their name.
    note = remote_post(peer, group, amira, title="Soup tonight")
    announce = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
                "type": "Announce", "actor": group.uri, "object": note, "to": [PUBLIC]}
    assert (await peer.apost(client, group, f"{BASE}/inbox", announce)).status_code == 202
    assert await node.db.fetch_val("SELECT 1 FROM remote_actors WHERE uri = :u",
                                   {"u": amira.uri}) is None
    post = await node.db.fetch_one("SELECT * FROM posts")
    host = f"{peer.host_ip}:{peer.port}"

    for page in (await client.get("/posts?scope=network"),
                 await client.get(f"/posts/{post['id']}")):
        assert bylines(page) == [f"Amira Haddad @amira@{host} · Refuge Bruxelles @refuge@{host}"]
        assert f'href="{amira.uri}" class="author" rel="nofollow noopener noreferrer">' \
               "Amira Haddad" in page.text
        assert f">{host}<" not in page.text and f"from {host}" not in page.text
        assert "avatar" not in page.text  # remote pictures are not loaded


async def test_an_author_whose_server_does_not_answer_is_named_by_handle(app_node, peer):
    node, client = app_node
    group = peer.actors["refuge"]
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', :t)",
        {"f": ORG, "e": group.uri, "a": f"{BASE}/activities/f1", "t": now()})
    ghost = f"{peer.base}/users/ghost"  # no such actor: the peer answers 404
    note = remote_post(peer, group, SimpleNamespace(uri=ghost), title="Blankets")
    announce = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
                "type": "Announce", "actor": group.uri, "object": note, "to": [PUBLIC]}
    assert (await peer.apost(client, group, f"{BASE}/inbox", announce)).status_code == 202
    page = await client.get("/posts?scope=network")
    host = f"{peer.host_ip}:{peer.port}"
    assert bylines(page) == [f"@ghost@{host} · Refuge Bruxelles @refuge@{host}"]
