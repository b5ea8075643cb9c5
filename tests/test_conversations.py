"""Private conversations are private: each role (responder, author, a coordinator of the
organisation, a coordinator of another organisation, the admin, another member, an anonymous
visitor) tries to read and to write each kind of conversation (member to member, a need posted
on behalf of someone, a responder on another server), through real HTTP on the app and a real
RemotePeer. Refusals store nothing; every page names who reads it and who wrote each message."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio

from node.actors import create_actor
from node.auth import create_user
from node.context import Node
from node.posts import wire
from tests.conftest import ADMIN_PASSWORD, node_settings, running_app
from tests.peers import RemotePeer
from tests.test_posts_pages import CSRF, NEED, PASSWORD, member, post_form

pytestmark = pytest.mark.asyncio(loop_scope="module")

BASE = "http://127.0.0.1:8999"
INBOX = f"{BASE}/inbox"
ADMIN = "admin@example.org"

# Who plays each role, for each kind of conversation ("" = not signed in).
PLAYERS = {
    "member": {"responder": "tom@example.org", "author": "nadia@example.org"},
    "proxied": {"responder": "tom@example.org", "author": "claire@example.org"},
    "remote": {"responder": None, "author": "nadia@example.org"},
}
COMMON = {"org_coordinator": "bruno@example.org", "other_coordinator": "oscar@example.org",
          "admin": ADMIN, "member": "eve@example.org", "anonymous": ""}
ALLOWED = {
    "member": {"responder", "author"},
    # The coordinators (and admins) of the organisation that posted it answer for the person.
    "proxied": {"responder", "author", "org_coordinator", "admin"},
    "remote": {"author"},
}
ROLES = ["responder", "author", "org_coordinator", "other_coordinator", "admin", "member",
         "anonymous"]


@dataclass
class World:
    node: Node
    client: httpx.AsyncClient
    peer: RemotePeer
    posts: dict[str, dict] = field(default_factory=dict)
    responses: dict[str, dict] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)


async def wait_for(node: Node, sql: str, values: dict | None = None, tries: int = 200):
    """The inbox may finish an activity just after its 202: poll for the stored outcome."""
    for _ in range(tries):
        row = await node.db.fetch_one(sql, values or {})
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing matched {sql}")


async def token(client: httpx.AsyncClient) -> str:
    page = await client.get("/login" if not client.cookies else "/posts")
    return CSRF.search(page.text).group(1)


_SESSIONS: dict[str, dict[str, str]] = {}


async def login(client: httpx.AsyncClient, email: str) -> None:
    """Signed in as `email`: the session cookie is kept, so each person signs in once."""
    client.cookies.clear()
    client.headers["Accept-Language"] = "en"
    if email in _SESSIONS:
        client.cookies.update(_SESSIONS[email])
        return
    page = await client.get("/login")
    resp = await client.post("/login", data={
        "email": email, "password": ADMIN_PASSWORD if email == ADMIN else PASSWORD,
        "csrf_token": CSRF.search(page.text).group(1)})
    assert resp.status_code == 303, resp.text
    _SESSIONS[email] = dict(client.cookies)


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    if email:
        await login(client, email)
    else:
        client.cookies.clear()
        client.headers["Accept-Language"] = "en"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world_node(module_database):
    tmp, url = module_database
    # Many sign-ins from one address: the sign-in rate limit is not what is tested here.
    async with running_app(node_settings(tmp, url, NODE_RATE_LOGIN_PER_ADDRESS="0")) as pair:
        yield pair


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(world_node):
    node, client = world_node
    _SESSIONS.clear()
    peer = RemotePeer("127.0.0.130")
    lena = peer.add_actor("lena")
    peer.add_actor("mallory")
    await peer.astart()
    w = World(node, client, peer)
    await node.db.execute("UPDATE users SET display_name = 'Ada' WHERE email = :e", {"e": ADMIN})
    w.users["nadia"] = await member(node, "nadia@example.org", person="nadia")
    w.users["tom"] = await member(node, "tom@example.org", person="tom")
    w.users["eve"] = await member(node, "eve@example.org", person="eve")
    w.users["claire"] = await member(node, "claire@example.org", "coordinator", person="claire")
    w.users["bruno"] = await member(node, "bruno@example.org", "coordinator", person="bruno")
    # A coordinator of another organisation of the same node.
    other = await create_actor(node, "Group", "autre", "Autre quartier")
    oscar = await create_actor(node, "Person", "oscar", "Oscar")
    w.users["oscar"] = await create_user(node, "oscar@example.org", "long enough password",
                                         role="coordinator", actor_id=oscar.id)
    await node.db.execute("INSERT INTO memberships (user_id, org_id, role) VALUES "
                          "(:u, :o, 'coordinator')", {"u": w.users["oscar"], "o": other.id})

    await login(client, "nadia@example.org")
    assert (await post_form(client, "offer", {**NEED, "category": "housing",
                                              "title": "A spare bed"})).status_code == 303
    w.posts["member"] = w.posts["remote"] = await node.db.fetch_one(
        "SELECT * FROM posts WHERE title = 'A spare bed'")
    await login(client, "claire@example.org")
    proxied = {**NEED, "title": "Winter coats for a family", "proxied": "1",
               "beneficiary_notes": "Mme Dupont"}
    assert (await post_form(client, "need", proxied)).status_code == 303
    w.posts["proxied"] = await node.db.fetch_one(
        "SELECT * FROM posts WHERE title = 'Winter coats for a family'")

    await login(client, "tom@example.org")
    for kind in ("member", "proxied"):
        post = w.posts[kind]
        page = await client.get(f"/posts/{post['id']}")
        resp = await client.post(f"/posts/{post['id']}/respond", data={
            "csrf_token": CSRF.search(page.text).group(1), "message": f"Tom for {kind}"})
        assert resp.status_code == 303, resp.text
        w.responses[kind] = await node.db.fetch_one(
            "SELECT * FROM responses WHERE post_id = :p AND responder_user_id = :u",
            {"p": post["id"], "u": w.users["tom"]})

    post = w.posts["remote"]
    offer = wire.offer(f"{peer.base}/responses/l1/offer", lena.uri, post["uri"],
                       post["attributed_to"], [post["attributed_to"]], "<p>Lena here</p>")
    offer["context"] = f"{peer.base}/responses/l1"
    assert (await peer.apost(client, lena, INBOX, offer)).status_code == 202
    w.responses["remote"] = await wait_for(
        node, "SELECT * FROM responses WHERE responder_uri = :a", {"a": lena.uri})
    yield w
    await peer.astop()


async def counts(node: Node) -> tuple[int, int]:
    return (await node.db.fetch_val("SELECT COUNT(*) FROM conversation_messages"),
            await node.db.fetch_val("SELECT COUNT(*) FROM activities"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", ["member", "proxied", "remote"])
async def test_each_role_reads_and_writes_each_conversation_or_is_refused(world, kind, role):
    node, client = world.node, world.client
    email = PLAYERS[kind].get(role, COMMON.get(role))
    if email is None:
        pytest.skip("the responder of this conversation is on another server (tested below)")
    response = world.responses[kind]
    allowed = role in ALLOWED[kind]
    await sign_in(client, email)
    page = await client.get(f"/responses/{response['id']}")
    before = await counts(node)
    text = f"{role} writes in the {kind} conversation"
    resp = await client.post(f"/responses/{response['id']}",
                             data={"csrf_token": await token(client), "message": text})
    if role == "anonymous":
        assert page.status_code == resp.status_code == 303
        assert resp.headers["location"].startswith("/login")
    elif not allowed:
        assert page.status_code == resp.status_code == 403
        assert "Tom for" not in page.text and "Lena here" not in page.text
    else:
        assert page.status_code == 200 and resp.status_code == 303, resp.text
    stored = await node.db.fetch_all(
        "SELECT * FROM conversation_messages WHERE body_html LIKE :t", {"t": f"%{text}%"})
    if not allowed:
        assert stored == [] and await counts(node) == before
        return
    assert len(stored) == 1 and stored[0]["response_id"] == response["id"]
    reader = await client.get(f"/responses/{response['id']}")
    assert text in reader.text
    if kind == "remote":
        # The message went to the responder's server only, as a private Note.
        note = json.loads(await node.db.fetch_val(
            "SELECT a.payload FROM activities a JOIN deliveries d ON d.activity_uri = a.uri "
            "WHERE a.payload LIKE :t AND d.inbox_url = :i",
            {"t": f"%{text}%", "i": f"{world.peer.base}/inbox"}))
        assert note["object"]["to"] == [world.peer.actors["lena"].uri]
        assert note["object"]["cc"] == [] and "Public" not in json.dumps(note)


async def test_each_page_names_who_reads_it_and_who_wrote_each_message(world):
    client = world.client
    await login(client, "tom@example.org")
    page = (await client.get(f"/responses/{world.responses['member']['id']}")).text
    readers = page[page.index("Who can read this conversation"):page.index('<ol class="messages"')]
    assert "Tom" in readers and "(you)" in readers and "responded" in readers
    assert "Nadia" in readers and "author of the post" in readers
    assert "Bruno" not in readers and "Ada" not in readers and "Claire" not in readers

    page = (await client.get(f"/responses/{world.responses['proxied']['id']}")).text
    readers = page[page.index("Who can read this conversation"):page.index('<ol class="messages"')]
    for name in ("Claire", "Bruno", "Ada"):
        assert f"{name}</strong> · <span class=\"role\">coordinator of Voisins solidaires" \
            in readers, name
    assert "on behalf of someone without an account" in readers and "Nadia" not in readers

    # A remote responder is named by their actor's name and server, never by a raw URL.
    await login(client, "nadia@example.org")
    lena = world.peer.actors["lena"]
    page = (await client.get(f"/responses/{world.responses['remote']['id']}")).text
    assert "Lena</strong>" in page and f"on 127.0.0.130:{world.peer.port}" in page
    assert lena.uri not in page
    listing = (await client.get(f"/posts/{world.posts['remote']['id']}/responses")).text
    assert "Lena" in listing and lena.uri not in listing


async def test_a_message_from_someone_not_a_party_is_shown_under_their_own_name(world):
    """The reported bug: a coordinator wrote in a neighbours' conversation and was shown as
    "the author". Such a message (stored before the rule) now carries its writer's name."""
    node, client = world.node, world.client
    response = world.responses["member"]
    await node.db.execute(
        "INSERT INTO conversation_messages (response_id, sender_uri, sender_user_id, "
        "body_html, created_at) VALUES (:r, :s, :u, '<p>Old intrusion</p>', 1)",
        {"r": response["id"], "s": world.posts["member"]["attributed_to"],
         "u": world.users["bruno"]})
    await login(client, "tom@example.org")
    page = (await client.get(f"/responses/{response['id']}")).text
    item = page[page.rindex("<li", 0, page.index("Old intrusion")):page.index("Old intrusion")]
    assert "Bruno" in item and "not taking part in this conversation" in item
    assert "author of the post" not in item
    await node.db.execute("DELETE FROM conversation_messages WHERE body_html LIKE '%intrusion%'")


async def test_responses_and_answers_belong_to_the_posts_side_only(world):
    node, client = world.node, world.client
    member_post, response = world.posts["member"], world.responses["member"]
    for email in ("bruno@example.org", ADMIN, "eve@example.org"):
        await login(client, email)
        assert (await client.get(f"/posts/{member_post['id']}/responses")).status_code == 403
        for action in ("accept", "decline", "undo"):
            resp = await client.post(f"/responses/{response['id']}/{action}",
                                     data={"csrf_token": await token(client), "confirm": "yes"})
            assert resp.status_code == 403, (email, action)
        post_page = (await client.get(f"/posts/{member_post['id']}")).text
        assert f"/posts/{member_post['id']}/responses" not in post_page
    assert await node.db.fetch_val("SELECT status FROM responses WHERE id = :i",
                                   {"i": response["id"]}) == "pending"
    # The coordinators of the organisation answer a need it posted on behalf of someone.
    await login(client, "bruno@example.org")
    listing = await client.get(f"/posts/{world.posts['proxied']['id']}/responses")
    assert listing.status_code == 200 and "Tom for proxied" in listing.text
    assert "Only the coordinators of Voisins solidaires read these responses" in listing.text


async def test_the_response_form_states_the_same_rule(world):
    client = world.client
    await login(client, "eve@example.org")
    page = (await client.get(f"/posts/{world.posts['member']['id']}")).text
    assert "Only you and Nadia, who posted it, will read your message" in page
    page = (await client.get(f"/posts/{world.posts['proxied']['id']}")).text
    assert "Only you and the coordinators of Voisins solidaires, who posted this need on " \
           "behalf of someone" in page
    assert "Claire, Bruno" in page or "Ada, Claire, Bruno" in page
    assert "Only the author and the coordinators see it" not in page


async def test_only_the_two_sides_write_from_another_server(world):
    node, client, peer = world.node, world.client, world.peer
    response = world.responses["remote"]
    lena, mallory = peer.actors["lena"], peer.actors["mallory"]

    def note(actor, n: int, text: str) -> dict:
        obj = {"id": f"{peer.base}/notes/{actor.username}{n}", "type": "Note",
               "attributedTo": actor.uri, "inReplyTo": world.posts["remote"]["uri"],
               "context": response["thread_uri"], "content": f"<p>{text}</p>",
               "to": [world.posts["remote"]["attributed_to"]]}
        return {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
                "type": "Create", "actor": actor.uri, "object": obj, "to": obj["to"]}

    assert (await peer.apost(client, mallory, INBOX, note(mallory, 1, "Mallory butts in"))
            ).status_code in (202, 422)
    assert (await peer.apost(client, lena, INBOX, note(lena, 1, "Lena again"))).status_code \
        == 202
    await wait_for(node, "SELECT 1 FROM conversation_messages WHERE body_html LIKE '%Lena again%'")
    assert await node.db.fetch_val(
        "SELECT COUNT(*) FROM conversation_messages WHERE body_html LIKE '%Mallory%'") == 0
    await login(client, "nadia@example.org")
    page = (await client.get(f"/responses/{response['id']}")).text
    item = page[page.rindex("<li", 0, page.index("Lena again")):page.index("Lena again")]
    assert "Lena</strong>" in item and "responded" in item and "127.0.0.130" in item


async def test_a_conversation_about_a_post_of_another_node(world):
    """Tom answers a post of a followed organisation: he and its author read the
    conversation; neither that organisation nor a coordinator here writes or reads in it."""
    node, client, peer = world.node, world.client, world.peer
    refuge, lena = peer.add_actor("refuge", kind="Group"), peer.actors["lena"]
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', 1)",
        {"f": f"{BASE}/groups/voisins", "e": refuge.uri, "a": f"{BASE}/activities/fr"})
    remote = {"id": "r1", "uri": f"{peer.base}/posts/r1", "url": f"{peer.base}/posts/r1",
              "kind": "offer", "category": "food", "title": "Soup tonight",
              "description_html": "<p>Hot soup</p>", "neighbourhood": "Forest", "latitude": None,
              "longitude": None, "starts_at": None, "ends_at": None, "capacity": 3,
              "unit": "meal", "urgency": 1, "languages": "nl", "visibility": "public",
              "status": "open", "created_at": 1.0, "updated_at": 1.0}
    note = wire.to_note(remote, wire.Addressing(lena.uri, refuge.uri), peer.base)
    create = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
              "type": "Create", "actor": lena.uri, "object": note, "to": note["to"],
              "cc": note["cc"]}
    assert (await peer.apost(client, lena, INBOX, create)).status_code == 202
    post = await wait_for(node, "SELECT * FROM posts WHERE uri = :u", {"u": note["id"]})
    await login(client, "tom@example.org")
    page = await client.get(f"/posts/{post['id']}")
    assert f"Only you and Lena (on 127.0.0.130:{peer.port}), who posted it" in page.text
    resp = await client.post(f"/posts/{post['id']}/respond", data={
        "csrf_token": CSRF.search(page.text).group(1), "message": "Tom wants soup"})
    assert resp.status_code == 303
    response = await node.db.fetch_one("SELECT * FROM responses WHERE post_id = :p",
                                       {"p": post["id"]})

    def reply(actor, n: int, text: str) -> dict:
        obj = {"id": f"{peer.base}/notes/{actor.username}-r{n}", "type": "Note",
               "attributedTo": actor.uri, "inReplyTo": post["uri"],
               "context": response["thread_uri"], "content": f"<p>{text}</p>",
               "to": [response["responder_uri"]]}
        return {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
                "type": "Create", "actor": actor.uri, "object": obj, "to": obj["to"]}

    await peer.apost(client, refuge, INBOX, reply(refuge, 1, "The group butts in"))
    assert (await peer.apost(client, lena, INBOX, reply(lena, 1, "Come at six"))).status_code \
        == 202
    await wait_for(node, "SELECT 1 FROM conversation_messages WHERE body_html LIKE '%at six%'")
    assert await node.db.fetch_val(
        "SELECT COUNT(*) FROM conversation_messages WHERE body_html LIKE '%butts in%'") == 0
    page = (await client.get(f"/responses/{response['id']}")).text
    item = page[page.rindex("<li", 0, page.index("Come at six")):page.index("Come at six")]
    assert "Lena</strong>" in item and "author of the post" in item
    for email in ("bruno@example.org", ADMIN, "nadia@example.org"):
        await login(client, email)
        assert (await client.get(f"/responses/{response['id']}")).status_code == 403
        assert (await client.get(f"/posts/{post['id']}/responses")).status_code == 403


async def test_every_coordinator_who_reads_a_proxied_need_is_told_of_its_response(world):
    """The same rule decides who is notified: for a need posted on behalf of someone, every
    coordinator of its organisation (and its admins), never a coordinator of another."""
    node = world.node
    rows = await node.db.fetch_all(
        "SELECT u.email FROM notifications n JOIN users u ON u.id = n.user_id "
        "WHERE n.kind = 'new_response' AND n.payload LIKE :t",
        {"t": "%Winter coats for a family%"})
    told = {r["email"] for r in rows}
    assert {"claire@example.org", "bruno@example.org", ADMIN} <= told
    assert "oscar@example.org" not in told and "tom@example.org" not in told
