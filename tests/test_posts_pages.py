"""Offers and needs through the web pages, on the in-process app with a real SQLite database:
posting, bad input, listing and filters, the post page in HTML and ActivityPub, responding,
accepting and marking fulfilled, and who may see what."""

from __future__ import annotations

import json
import re
import time

import httpx

from node.actors import create_actor
from node.auth import create_user
from node.context import Node
from tests.conftest import node_settings, running_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "long enough password"


def csrf(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text[:500]
    return match.group(1)


async def member(node: Node, email: str, role: str = "member", person: str | None = None) -> str:
    actor_id = None
    if person:
        actor_id = (await create_actor(node, "Person", person, person.title())).id
    user_id = await create_user(node, email, PASSWORD, role=role, actor_id=actor_id)
    org = await node.db.fetch_val("SELECT id FROM actors WHERE kind = 'Group'")
    await node.db.execute("INSERT INTO memberships (user_id, org_id, role) VALUES (:u, :o, :r)",
                          {"u": user_id, "o": org, "r": role})
    return user_id


async def login(client: httpx.AsyncClient, email: str) -> None:
    client.cookies.clear()
    client.headers["Accept-Language"] = "en"  # the messages below are checked in English
    token = csrf(await client.get("/login"))
    resp = await client.post("/login", data={"email": email, "password": PASSWORD,
                                             "csrf_token": token})
    assert resp.status_code == 303, resp.text


NEED = {"category": "housing", "title": "A bed for two nights",
        "description": "A mother and her child need **a bed** for two nights.",
        "neighbourhood": "Saint-Gilles", "capacity": "2", "unit": "night", "urgency": "3",
        "languages": ["fr", "ar"]}


async def post_form(client: httpx.AsyncClient, kind: str, fields: dict) -> httpx.Response:
    token = csrf(await client.get(f"/posts/new?kind={kind}"))
    return await client.post(f"/posts/new?kind={kind}",
                             data={"csrf_token": token, "kind": kind, **fields})


async def count(node: Node, table: str) -> int:
    return await node.db.fetch_val(f"SELECT COUNT(*) FROM {table}")


async def test_a_member_posts_a_need_and_it_is_listed_and_published(app_node):
    node, client = app_node
    await member(node, "ana@example.org", person="ana")
    await login(client, "ana@example.org")
    resp = await post_form(client, "need", NEED)
    assert resp.status_code == 303, resp.text
    post = await node.db.fetch_one("SELECT * FROM posts")
    assert resp.headers["location"].startswith(f"/posts/{post['id']}")
    assert post["kind"] == "need" and post["status"] == "open" and post["languages"] == "fr,ar"
    assert post["attributed_to"] == node.url("/users/ana")
    assert "<strong>a bed</strong>" in post["description_html"]
    # Needs expire after NODE_NEED_EXPIRY_DAYS (30) when no end is given.
    assert abs(post["ends_at"] - (time.time() + 30 * 86400)) < 120

    page = await client.get(f"/posts/{post['id']}")
    assert page.status_code == 200 and "A bed for two nights" in page.text
    listing = await client.get("/posts?kind=need&category=housing&neighbourhood=Saint-Gilles")
    assert f"/posts/{post['id']}" in listing.text
    assert f"/posts/{post['id']}" not in (await client.get("/posts?kind=offer")).text
    assert f"/posts/{post['id']}" not in (await client.get("/posts?category=shower")).text
    assert f"/posts/{post['id']}" in (await client.get("/posts?language=ar&q=BED")).text
    assert f"/posts/{post['id']}" not in (await client.get("/posts?language=nl")).text
    assert f"/posts/{post['id']}" not in (await client.get("/posts?scope=network")).text

    # Published: a Create from the member's Person actor and the Group's Announce.
    kinds = {r["type"]: r for r in await node.db.fetch_all("SELECT * FROM activities")}
    assert set(kinds) == {"Create", "Announce"}
    assert kinds["Create"]["actor_uri"] == node.url("/users/ana")
    assert kinds["Announce"]["actor_uri"] == node.url("/groups/voisins")

    # The same URL answers ActivityPub with the FEP-0837 Note.
    doc = (await client.get(f"/posts/{post['id']}",
                            headers={"Accept": "application/activity+json"})).json()
    assert doc["type"] == "Note" and doc["purpose"] == "request"
    assert doc["publishes"]["receiver"] == node.url("/users/ana")
    assert doc["location"]["latitude"] == 50.83 and "summary" not in doc


async def test_bad_input_is_explained_and_stores_nothing(app_node):
    node, client = app_node
    await member(node, "bob@example.org")
    await login(client, "bob@example.org")
    cases = [
        ({**NEED, "title": ""}, "A title is needed."),
        ({**NEED, "category": "weapons"}, "Choose a category from the list."),
        ({**NEED, "neighbourhood": "Atlantis"}, "Choose a neighbourhood from the list."),
        ({**NEED, "ends_at": "2001-01-01"}, "The end date is in the past."),
        ({**NEED, "ends_at": "tomorrow"}, "Give the end as a date"),
        ({**NEED, "description": "x" * 5001}, "at most 5000 characters"),
        ({**NEED, "title": "t" * 121}, "at most 120 characters"),
        ({**NEED, "capacity": "-3"}, "whole number"),
        ({**NEED, "proxied": "1", "beneficiary_notes": "Mrs X"}, "Only coordinators"),
    ]
    for fields, message in cases:
        resp = await post_form(client, "need", fields)
        assert resp.status_code == 400, fields
        assert message in resp.text, (message, resp.text[-2000:])
    # A POST without the CSRF token: refused with a message, nothing stored.
    resp = await client.post("/posts/new?kind=need", data={"kind": "need", **NEED})
    assert resp.status_code == 403 and "form has expired" in resp.text.lower()
    assert await count(node, "posts") == 0 and await count(node, "activities") == 0


async def test_hostile_html_is_neutralised(app_node):
    node, client = app_node
    await member(node, "eve@example.org")
    await login(client, "eve@example.org")
    hostile = {**NEED, "title": "<script>alert(1)</script>Bed",
               "description": '<img src=x onerror=alert(1)> [x](javascript:alert(1)) ok'}
    assert (await post_form(client, "need", hostile)).status_code == 303
    post = await node.db.fetch_one("SELECT * FROM posts")
    page = (await client.get(f"/posts/{post['id']}")).text
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    # Typed HTML is shown as text, never as a tag; a javascript: link is not a link.
    assert "<img" not in post["description_html"] and "<img" not in page
    assert 'href="javascript' not in post["description_html"]


async def test_respond_accept_fulfil_on_one_node(app_node):
    node, client = app_node
    await member(node, "author@example.org", person="author")
    await member(node, "helper@example.org")
    await member(node, "second@example.org")
    await login(client, "author@example.org")
    await post_form(client, "need", NEED)
    post = await node.db.fetch_one("SELECT * FROM posts")

    # The author cannot respond to their own post.
    token = csrf(await client.get(f"/posts/{post['id']}"))
    resp = await client.post(f"/posts/{post['id']}/respond",
                             data={"csrf_token": token, "message": "me"})
    assert resp.status_code == 400 and "your own post" in resp.text

    for email, text in (("helper@example.org", "I have a spare room."),
                        ("second@example.org", "We can host too.")):
        await login(client, email)
        page = await client.get(f"/posts/{post['id']}")
        resp = await client.post(f"/posts/{post['id']}/respond",
                                 data={"csrf_token": csrf(page), "message": ""})
        assert resp.status_code == 400 and "Write a message." in resp.text
        resp = await client.post(f"/posts/{post['id']}/respond",
                                 data={"csrf_token": csrf(page), "message": text})
        assert resp.status_code == 303
    helper_response = await node.db.fetch_one(
        "SELECT r.* FROM responses r JOIN users u ON u.id = r.responder_user_id "
        "WHERE u.email = 'helper@example.org'")
    # Another member cannot read someone else's conversation, nor the responses.
    assert (await client.get(f"/responses/{helper_response['id']}")).status_code == 403
    assert (await client.get(f"/posts/{post['id']}/responses")).status_code == 403

    await login(client, "author@example.org")
    listing = await client.get(f"/posts/{post['id']}/responses")
    assert "I have a spare room." in listing.text and "We can host too." in listing.text
    resp = await client.post(f"/responses/{helper_response['id']}/accept",
                             data={"csrf_token": csrf(listing)})
    assert resp.status_code == 303
    statuses = {r["message_html"]: r["status"] for r in
                await node.db.fetch_all("SELECT * FROM responses")}
    # The need takes two helpers: accepting one declines nobody, the post stays open.
    assert statuses == {"<p>I have a spare room.</p>\n": "accepted",
                        "<p>We can host too.</p>\n": "pending"}
    assert (await node.db.fetch_val("SELECT status FROM posts")) == "open"
    assert "1 more person needed" in (await client.get(f"/posts/{post['id']}/responses")).text

    # The conversation: both sides write and read.
    conv = await client.get(f"/responses/{helper_response['id']}")
    assert "I have a spare room." in conv.text
    await client.post(f"/responses/{helper_response['id']}",
                      data={"csrf_token": csrf(conv), "message": "Come at 6pm."})
    await login(client, "helper@example.org")
    conv = await client.get(f"/responses/{helper_response['id']}")
    assert "Come at 6pm." in conv.text and "accepted" in conv.text.lower()

    await login(client, "author@example.org")
    page = await client.get(f"/posts/{post['id']}")
    resp = await client.post(f"/posts/{post['id']}/status",
                             data={"csrf_token": csrf(page), "action": "fulfil", "confirm": "yes"})
    assert resp.status_code == 303
    # Fulfilled: the response still waiting is told kindly that it is not needed.
    assert await node.db.fetch_val(
        "SELECT status FROM responses WHERE message_html LIKE '%host too%'") == "not_needed"
    # Fulfilled: out of the default list, still at its URL, marked fulfilled.
    assert f"/posts/{post['id']}" not in (await client.get("/posts")).text
    page = await client.get(f"/posts/{post['id']}")
    assert "Fulfilled" in page.text
    update = await node.db.fetch_one(
        "SELECT payload FROM activities WHERE type = 'Update' ORDER BY seq DESC LIMIT 1")
    note = json.loads(update["payload"])["object"]
    assert note["publishes"]["finished"] is True
    assert note["publishes"]["availableQuantity"]["hasNumericalValue"] == "0"
    assert "<strong>Réalisée</strong>" in note["content"]  # in the post's language


async def test_proxied_need_names_only_the_organisation(app_node):
    node, client = app_node
    await member(node, "coord@example.org", role="coordinator", person="coord")
    await login(client, "coord@example.org")
    fields = {**NEED, "title": "A family of four needs winter clothes", "category": "clothes",
              "proxied": "1", "beneficiary_notes": "Mme Dupont, 0470 12 34 56"}
    assert (await post_form(client, "need", fields)).status_code == 303
    post = await node.db.fetch_one("SELECT * FROM posts")
    assert post["attributed_to"] == node.url("/groups/voisins") and post["proxied"] == 1
    payloads = " ".join(r["payload"] for r in await node.db.fetch_all(
        "SELECT payload FROM activities"))
    assert "Dupont" not in payloads and "/users/coord" not in payloads
    assert "Dupont" in (await client.get(f"/posts/{post['id']}")).text  # the coordinator sees it
    client.cookies.clear()
    assert "Dupont" not in (await client.get(f"/posts/{post['id']}")).text


async def test_withdrawal_federates_a_delete_and_answers_gone(app_node):
    node, client = app_node
    await member(node, "w@example.org")
    await login(client, "w@example.org")
    await post_form(client, "offer", {**NEED, "category": "shower", "title": "Warm shower"})
    post = await node.db.fetch_one("SELECT * FROM posts")
    page = await client.get(f"/posts/{post['id']}")
    resp = await client.post(f"/posts/{post['id']}/status",
                             data={"csrf_token": csrf(page),
                                   "action": "withdraw", "confirm": "yes"})
    assert resp.status_code == 303
    delete = await node.db.fetch_one("SELECT payload FROM activities WHERE type = 'Delete'")
    assert json.loads(delete["payload"])["object"]["type"] == "Tombstone"
    resp = await client.get(f"/posts/{post['id']}", headers={"Accept": "application/activity+json"})
    assert resp.status_code == 410
    # A withdrawn post cannot be fulfilled any more: a clear message, nothing changes.
    resp = await client.post(f"/posts/{post['id']}/status",
                             data={"csrf_token": csrf(page), "action": "fulfil", "confirm": "yes"})
    assert resp.status_code == 400 and "cannot go from withdrawn" in resp.text


async def test_list_pages_sorts_and_hides_what_anonymous_readers_may_not_see(app_node):
    node, client = app_node
    await member(node, "many@example.org")
    await login(client, "many@example.org")
    for n in range(21):
        fields = {**NEED, "title": f"Need number {n}", "urgency": "3" if n == 4 else "1"}
        assert (await post_form(client, "need", fields)).status_code == 303
    hidden = {**NEED, "title": "Members only", "visibility": "followers"}
    assert (await post_form(client, "need", hidden)).status_code == 303
    first = await client.get("/posts")
    assert "Need number 20" in first.text and "Page 1 of 2" in first.text
    assert "Need number 0<" not in first.text
    second = await client.get("/posts?page=2")
    assert "Need number 0<" in second.text
    urgent = await client.get("/posts?sort=urgent")
    assert urgent.text.index("Need number 4<") < urgent.text.index("Need number 0<")
    assert "Members only" in (await client.get("/posts?q=members")).text
    followers_only = await node.db.fetch_one("SELECT * FROM posts WHERE title = 'Members only'")
    client.cookies.clear()
    assert "Members only" not in (await client.get("/posts?q=members")).text
    assert (await client.get(f"/posts/{followers_only['id']}")).status_code == 303
    ap = await client.get(f"/posts/{followers_only['id']}",
                          headers={"Accept": "application/activity+json"})
    assert ap.status_code == 404
    # The organisation page leads to its posts; the list filters by organisation.
    assert "/posts?org=voisins" in (await client.get("/groups/voisins")).text
    assert "Need number 20" in (await client.get("/posts?org=voisins")).text


async def test_a_need_expires_and_its_expiry_is_federated(tmp_path, database_url):
    settings = node_settings(tmp_path, database_url, NODE_NEED_EXPIRY_DAYS="2")
    async with running_app(settings) as (node, client):
        await member(node, "exp@example.org")
        await login(client, "exp@example.org")
        assert (await post_form(client, "need", NEED)).status_code == 303
        post = await node.db.fetch_one("SELECT * FROM posts")
        assert abs(post["ends_at"] - (time.time() + 2 * 86400)) < 120
        # Two days later (moved back in the database rather than waiting).
        await node.db.execute("UPDATE posts SET ends_at = :t", {"t": time.time() - 1})
        assert f"/posts/{post['id']}" not in (await client.get("/posts")).text
        assert await node.db.fetch_val("SELECT status FROM posts") == "expired"
        assert await node.db.fetch_val(
            "SELECT COUNT(*) FROM activities WHERE type = 'Delete'") == 1
        assert "Expired" in (await client.get(f"/posts/{post['id']}")).text


async def test_reading_a_post_past_its_end_expires_that_post(app_node):
    """A peer fetching the Note, or a person opening the page, of a post whose end has passed
    meets it expired, and the Delete goes out once, even when no list was read before."""
    node, client = app_node
    await member(node, "due@example.org")
    await login(client, "due@example.org")
    for title in ("First", "Second"):
        assert (await post_form(client, "need", {**NEED, "title": title})).status_code == 303
    first, second = await node.db.fetch_all("SELECT * FROM posts ORDER BY title")
    await node.db.execute("UPDATE posts SET ends_at = :t", {"t": time.time() - 1})
    note = await client.get(f"/posts/{first['id']}",
                            headers={"Accept": "application/activity+json"})
    assert note.status_code == 410 and note.json()["type"] == "Tombstone"
    statuses = {r["title"]: r["status"] for r in
                await node.db.fetch_all("SELECT title, status FROM posts")}
    assert statuses == {"First": "expired", "Second": "open"}  # only the post read
    assert "Expired" in (await client.get(f"/posts/{second['id']}")).text
    assert "Expired" in (await client.get(f"/posts/{first['id']}")).text
    assert await node.db.fetch_val(
        "SELECT COUNT(*) FROM activities WHERE type = 'Delete'") == 2


async def test_the_author_edits_a_post_and_others_cannot(app_node):
    node, client = app_node
    await member(node, "ed@example.org")
    await member(node, "other@example.org")
    await login(client, "ed@example.org")
    await post_form(client, "offer", {**NEED, "category": "food", "title": "Soup"})
    post = await node.db.fetch_one("SELECT * FROM posts")
    as_peer = {"Accept": "application/activity+json"}
    # Read by peers before the edit: the Note they get next is the edited one.
    for _ in range(2):
        assert (await client.get(f"/posts/{post['id']}", headers=as_peer)).json()[
            "name"] == "Soup"
    page = await client.get(f"/posts/{post['id']}/edit")
    assert 'value="Soup"' in page.text
    resp = await client.post(f"/posts/{post['id']}/edit", data={
        "csrf_token": csrf(page), **{**NEED, "category": "food", "title": ""}})
    assert resp.status_code == 400 and "A title is needed." in resp.text
    assert await node.db.fetch_val("SELECT title FROM posts") == "Soup"
    resp = await client.post(f"/posts/{post['id']}/edit", data={
        "csrf_token": csrf(page), **{**NEED, "category": "food", "title": "Soup and bread"}})
    assert resp.status_code == 303
    assert await node.db.fetch_val("SELECT title FROM posts") == "Soup and bread"
    note = (await client.get(f"/posts/{post['id']}", headers=as_peer)).json()
    assert note["name"] == "Soup and bread" and "Soup and bread" in note["content"]
    update = await node.db.fetch_one(
        "SELECT payload FROM activities WHERE type = 'Update' AND actor_uri = :o",
        {"o": node.url("/groups/voisins")})
    assert update is not None and json.loads(update["payload"])["object"]["name"] == (
        "Soup and bread")
    await login(client, "other@example.org")
    assert (await client.get(f"/posts/{post['id']}/edit")).status_code == 403
    resp = await client.post(f"/posts/{post['id']}/status",
                             data={"csrf_token": csrf(page),
                                   "action": "withdraw", "confirm": "yes"})
    assert resp.status_code == 403
    assert await node.db.fetch_val("SELECT status FROM posts") == "open"



async def test_a_card_in_the_lists_follows_its_post_and_its_readers_language(app_node):
    """Cards are drawn once per version of their post and per language (web_support.post_card):
    what a list shows still follows an edit, a change of status and who reads it."""
    node, client = app_node
    await member(node, "card@example.org")
    await login(client, "card@example.org")
    await post_form(client, "offer", {**NEED, "category": "food", "title": "Soup"})
    post = await node.db.fetch_one("SELECT * FROM posts")

    async def card(language: str) -> str:
        page = await client.get("/posts", headers={"Accept-Language": language})
        start = page.text.index('<article class="card')
        return page.text[start:page.text.index("</article>", start)]

    english, french, dutch = await card("en"), await card("fr"), await card("nl")
    assert "Meal or food" in english and "Soup" in english and f"/posts/{post['id']}" in english
    assert "Repas ou nourriture" in french and "Maaltijd of voedsel" in dutch
    assert 'class="urgency urgency-3"' in english
    assert await card("en") == english  # drawn again from what was kept: the same
    page = await client.get(f"/posts/{post['id']}/edit")
    await client.post(f"/posts/{post['id']}/edit", data={
        "csrf_token": csrf(page), **{**NEED, "category": "food", "title": "Soup and bread",
                                     "urgency": "1"}})
    edited = await card("en")
    assert "Soup and bread" in edited and 'class="urgency' not in edited
    assert "Soup and bread" in await card("fr")

async def test_a_member_who_blocks_a_responder_no_longer_sees_them(app_node):
    from node.moderation.blocks import block_actor

    node, client = app_node
    author_id = await member(node, "author@example.org", person="author")
    await member(node, "pest@example.org", person="pest")
    await member(node, "kind@example.org", person="kind")
    await login(client, "author@example.org")
    await post_form(client, "need", NEED)
    post = await node.db.fetch_one("SELECT * FROM posts")
    for email, text in (("pest@example.org", "Unpleasant words."),
                        ("kind@example.org", "We can host you.")):
        await login(client, email)
        page = await client.get(f"/posts/{post['id']}")
        resp = await client.post(f"/posts/{post['id']}/respond",
                                 data={"csrf_token": csrf(page), "message": text})
        assert resp.status_code == 303
    pest_response = await node.db.fetch_val(
        "SELECT id FROM responses WHERE responder_uri = :u", {"u": node.url("/users/pest")})

    await block_actor(node, author_id, node.url("/users/pest"))
    await login(client, "author@example.org")
    listing = (await client.get(f"/posts/{post['id']}/responses")).text
    assert "We can host you." in listing and "Unpleasant words." not in listing
    conversation = (await client.get(f"/responses/{pest_response}")).text
    assert "Unpleasant words." not in conversation
    # The block is the author's alone: the response is still stored, nothing was deleted.
    assert await node.db.fetch_val("SELECT COUNT(*) FROM responses") == 2


async def test_long_lists_count_up_to_a_cap_and_page_on(app_node, monkeypatch):
    """Lists count what matches up to COUNT_CAP (a bounded read on every view), then say "more
    than"; their pages go on one at a time, each knowing whether another follows."""
    from node.posts import queries

    node, client = app_node
    await member(node, "many@example.org")
    await login(client, "many@example.org")
    for n in range(5):
        await post_form(client, "offer", {**NEED, "category": "food", "title": f"Soup {n}"})
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    monkeypatch.setattr(queries, "COUNT_CAP", 10)
    first = (await client.get("/posts")).text
    assert "5 posts" in first and "Page 1 of 3" in first and 'rel="next"' in first
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    pages = [(await client.get(f"/posts?page={n}")).text for n in (1, 2, 3)]
    assert all("More than 3 posts" in page for page in pages)
    assert "Page 1<" in pages[0] and 'rel="next"' in pages[0] and 'rel="prev"' not in pages[0]
    assert "Page 2<" in pages[1] and 'rel="next"' in pages[1] and 'rel="prev"' in pages[1]
    assert 'rel="next"' not in pages[2] and 'rel="prev"' in pages[2]
    titles = [re.findall(r">(Soup \d)</a>", page) for page in pages]
    assert [len(t) for t in titles] == [2, 2, 1]
    assert sorted(t for page in titles for t in page) == [f"Soup {n}" for n in range(5)]
    home = await client.get("/", headers={"Accept-Language": "fr"})
    assert "Voir les annonces ouvertes (plus de 3)" in home.text
    network = await client.get("/network/posts", headers={"Accept-Language": "nl"})
    assert network.status_code == 200 and "Pagina" not in network.text  # nothing from afar
